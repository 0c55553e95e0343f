"""Polls one execution and reports its state."""


def handler(event, context):
    return {"id": event["id"], "state": "POLLING"}
