"""API handler: routes API Gateway requests to the orchestration logic."""

import json

from rbac_middleware import require_role


@require_role("operator")
def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"path": event.get("path")})}
