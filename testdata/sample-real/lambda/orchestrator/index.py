from shared.responses import ok


def handler(event, context):
    return ok({"step": event.get("step", 0) + 1})
