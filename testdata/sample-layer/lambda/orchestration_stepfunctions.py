"""Step Functions task: starts one recovery wave."""


def handler(event, context):
    wave = event["wave"]
    return {"wave": wave, "status": "STARTED"}
