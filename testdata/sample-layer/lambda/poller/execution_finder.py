"""Finds executions that still need polling."""


def handler(event, context):
    return {"executions": event.get("executions", [])}
