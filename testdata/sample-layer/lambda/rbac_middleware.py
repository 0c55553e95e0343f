"""Role checks for the API handler."""

import functools


def require_role(role):
    def wrap(fn):
        @functools.wraps(fn)
        def inner(event, context):
            claims = (event.get("requestContext") or {}).get("authorizer") or {}
            groups = claims.get("claims", {}).get("cognito:groups", "")
            if role not in groups.split(","):
                return {"statusCode": 403, "body": "forbidden"}
            return fn(event, context)

        return inner

    return wrap
