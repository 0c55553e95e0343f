"""Custom resource: builds the frontend configuration."""


def handler(event, context):
    return {"PhysicalResourceId": "frontend-builder"}
