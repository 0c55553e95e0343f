from crhelper.resource_helper import CfnResource  # noqa: F401
