from shared.responses import ok


def handler(event, context):
    return ok({"path": event.get("path", "/")})
