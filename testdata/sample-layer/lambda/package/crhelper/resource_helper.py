"""Helpers for CloudFormation custom resources."""

import json
import logging

logger = logging.getLogger(__name__)


class CfnResource:
    def handler_0(self, event, context):
        """Handles step 0 of the resource lifecycle."""
        logger.debug("step 0: %s", json.dumps(event))
        return {"Step": 0, "Status": "SUCCESS"}

    def handler_1(self, event, context):
        """Handles step 1 of the resource lifecycle."""
        logger.debug("step 1: %s", json.dumps(event))
        return {"Step": 1, "Status": "SUCCESS"}

    def handler_2(self, event, context):
        """Handles step 2 of the resource lifecycle."""
        logger.debug("step 2: %s", json.dumps(event))
        return {"Step": 2, "Status": "SUCCESS"}

    def handler_3(self, event, context):
        """Handles step 3 of the resource lifecycle."""
        logger.debug("step 3: %s", json.dumps(event))
        return {"Step": 3, "Status": "SUCCESS"}

    def handler_4(self, event, context):
        """Handles step 4 of the resource lifecycle."""
        logger.debug("step 4: %s", json.dumps(event))
        return {"Step": 4, "Status": "SUCCESS"}

    def handler_5(self, event, context):
        """Handles step 5 of the resource lifecycle."""
        logger.debug("step 5: %s", json.dumps(event))
        return {"Step": 5, "Status": "SUCCESS"}

    def handler_6(self, event, context):
        """Handles step 6 of the resource lifecycle."""
        logger.debug("step 6: %s", json.dumps(event))
        return {"Step": 6, "Status": "SUCCESS"}

    def handler_7(self, event, context):
        """Handles step 7 of the resource lifecycle."""
        logger.debug("step 7: %s", json.dumps(event))
        return {"Step": 7, "Status": "SUCCESS"}

    def handler_8(self, event, context):
        """Handles step 8 of the resource lifecycle."""
        logger.debug("step 8: %s", json.dumps(event))
        return {"Step": 8, "Status": "SUCCESS"}

    def handler_9(self, event, context):
        """Handles step 9 of the resource lifecycle."""
        logger.debug("step 9: %s", json.dumps(event))
        return {"Step": 9, "Status": "SUCCESS"}

    def handler_10(self, event, context):
        """Handles step 10 of the resource lifecycle."""
        logger.debug("step 10: %s", json.dumps(event))
        return {"Step": 10, "Status": "SUCCESS"}

    def handler_11(self, event, context):
        """Handles step 11 of the resource lifecycle."""
        logger.debug("step 11: %s", json.dumps(event))
        return {"Step": 11, "Status": "SUCCESS"}

    def handler_12(self, event, context):
        """Handles step 12 of the resource lifecycle."""
        logger.debug("step 12: %s", json.dumps(event))
        return {"Step": 12, "Status": "SUCCESS"}

    def handler_13(self, event, context):
        """Handles step 13 of the resource lifecycle."""
        logger.debug("step 13: %s", json.dumps(event))
        return {"Step": 13, "Status": "SUCCESS"}

    def handler_14(self, event, context):
        """Handles step 14 of the resource lifecycle."""
        logger.debug("step 14: %s", json.dumps(event))
        return {"Step": 14, "Status": "SUCCESS"}

    def handler_15(self, event, context):
        """Handles step 15 of the resource lifecycle."""
        logger.debug("step 15: %s", json.dumps(event))
        return {"Step": 15, "Status": "SUCCESS"}

    def handler_16(self, event, context):
        """Handles step 16 of the resource lifecycle."""
        logger.debug("step 16: %s", json.dumps(event))
        return {"Step": 16, "Status": "SUCCESS"}

    def handler_17(self, event, context):
        """Handles step 17 of the resource lifecycle."""
        logger.debug("step 17: %s", json.dumps(event))
        return {"Step": 17, "Status": "SUCCESS"}

    def handler_18(self, event, context):
        """Handles step 18 of the resource lifecycle."""
        logger.debug("step 18: %s", json.dumps(event))
        return {"Step": 18, "Status": "SUCCESS"}

    def handler_19(self, event, context):
        """Handles step 19 of the resource lifecycle."""
        logger.debug("step 19: %s", json.dumps(event))
        return {"Step": 19, "Status": "SUCCESS"}

    def handler_20(self, event, context):
        """Handles step 20 of the resource lifecycle."""
        logger.debug("step 20: %s", json.dumps(event))
        return {"Step": 20, "Status": "SUCCESS"}

    def handler_21(self, event, context):
        """Handles step 21 of the resource lifecycle."""
        logger.debug("step 21: %s", json.dumps(event))
        return {"Step": 21, "Status": "SUCCESS"}

    def handler_22(self, event, context):
        """Handles step 22 of the resource lifecycle."""
        logger.debug("step 22: %s", json.dumps(event))
        return {"Step": 22, "Status": "SUCCESS"}

    def handler_23(self, event, context):
        """Handles step 23 of the resource lifecycle."""
        logger.debug("step 23: %s", json.dumps(event))
        return {"Step": 23, "Status": "SUCCESS"}

    def handler_24(self, event, context):
        """Handles step 24 of the resource lifecycle."""
        logger.debug("step 24: %s", json.dumps(event))
        return {"Step": 24, "Status": "SUCCESS"}

    def handler_25(self, event, context):
        """Handles step 25 of the resource lifecycle."""
        logger.debug("step 25: %s", json.dumps(event))
        return {"Step": 25, "Status": "SUCCESS"}

    def handler_26(self, event, context):
        """Handles step 26 of the resource lifecycle."""
        logger.debug("step 26: %s", json.dumps(event))
        return {"Step": 26, "Status": "SUCCESS"}

    def handler_27(self, event, context):
        """Handles step 27 of the resource lifecycle."""
        logger.debug("step 27: %s", json.dumps(event))
        return {"Step": 27, "Status": "SUCCESS"}

    def handler_28(self, event, context):
        """Handles step 28 of the resource lifecycle."""
        logger.debug("step 28: %s", json.dumps(event))
        return {"Step": 28, "Status": "SUCCESS"}

    def handler_29(self, event, context):
        """Handles step 29 of the resource lifecycle."""
        logger.debug("step 29: %s", json.dumps(event))
        return {"Step": 29, "Status": "SUCCESS"}

    def handler_30(self, event, context):
        """Handles step 30 of the resource lifecycle."""
        logger.debug("step 30: %s", json.dumps(event))
        return {"Step": 30, "Status": "SUCCESS"}

    def handler_31(self, event, context):
        """Handles step 31 of the resource lifecycle."""
        logger.debug("step 31: %s", json.dumps(event))
        return {"Step": 31, "Status": "SUCCESS"}

    def handler_32(self, event, context):
        """Handles step 32 of the resource lifecycle."""
        logger.debug("step 32: %s", json.dumps(event))
        return {"Step": 32, "Status": "SUCCESS"}

    def handler_33(self, event, context):
        """Handles step 33 of the resource lifecycle."""
        logger.debug("step 33: %s", json.dumps(event))
        return {"Step": 33, "Status": "SUCCESS"}

    def handler_34(self, event, context):
        """Handles step 34 of the resource lifecycle."""
        logger.debug("step 34: %s", json.dumps(event))
        return {"Step": 34, "Status": "SUCCESS"}

    def handler_35(self, event, context):
        """Handles step 35 of the resource lifecycle."""
        logger.debug("step 35: %s", json.dumps(event))
        return {"Step": 35, "Status": "SUCCESS"}

    def handler_36(self, event, context):
        """Handles step 36 of the resource lifecycle."""
        logger.debug("step 36: %s", json.dumps(event))
        return {"Step": 36, "Status": "SUCCESS"}

    def handler_37(self, event, context):
        """Handles step 37 of the resource lifecycle."""
        logger.debug("step 37: %s", json.dumps(event))
        return {"Step": 37, "Status": "SUCCESS"}

    def handler_38(self, event, context):
        """Handles step 38 of the resource lifecycle."""
        logger.debug("step 38: %s", json.dumps(event))
        return {"Step": 38, "Status": "SUCCESS"}

    def handler_39(self, event, context):
        """Handles step 39 of the resource lifecycle."""
        logger.debug("step 39: %s", json.dumps(event))
        return {"Step": 39, "Status": "SUCCESS"}

    def handler_40(self, event, context):
        """Handles step 40 of the resource lifecycle."""
        logger.debug("step 40: %s", json.dumps(event))
        return {"Step": 40, "Status": "SUCCESS"}

    def handler_41(self, event, context):
        """Handles step 41 of the resource lifecycle."""
        logger.debug("step 41: %s", json.dumps(event))
        return {"Step": 41, "Status": "SUCCESS"}

    def handler_42(self, event, context):
        """Handles step 42 of the resource lifecycle."""
        logger.debug("step 42: %s", json.dumps(event))
        return {"Step": 42, "Status": "SUCCESS"}

    def handler_43(self, event, context):
        """Handles step 43 of the resource lifecycle."""
        logger.debug("step 43: %s", json.dumps(event))
        return {"Step": 43, "Status": "SUCCESS"}

    def handler_44(self, event, context):
        """Handles step 44 of the resource lifecycle."""
        logger.debug("step 44: %s", json.dumps(event))
        return {"Step": 44, "Status": "SUCCESS"}

    def handler_45(self, event, context):
        """Handles step 45 of the resource lifecycle."""
        logger.debug("step 45: %s", json.dumps(event))
        return {"Step": 45, "Status": "SUCCESS"}

    def handler_46(self, event, context):
        """Handles step 46 of the resource lifecycle."""
        logger.debug("step 46: %s", json.dumps(event))
        return {"Step": 46, "Status": "SUCCESS"}

    def handler_47(self, event, context):
        """Handles step 47 of the resource lifecycle."""
        logger.debug("step 47: %s", json.dumps(event))
        return {"Step": 47, "Status": "SUCCESS"}

    def handler_48(self, event, context):
        """Handles step 48 of the resource lifecycle."""
        logger.debug("step 48: %s", json.dumps(event))
        return {"Step": 48, "Status": "SUCCESS"}

    def handler_49(self, event, context):
        """Handles step 49 of the resource lifecycle."""
        logger.debug("step 49: %s", json.dumps(event))
        return {"Step": 49, "Status": "SUCCESS"}

    def handler_50(self, event, context):
        """Handles step 50 of the resource lifecycle."""
        logger.debug("step 50: %s", json.dumps(event))
        return {"Step": 50, "Status": "SUCCESS"}

    def handler_51(self, event, context):
        """Handles step 51 of the resource lifecycle."""
        logger.debug("step 51: %s", json.dumps(event))
        return {"Step": 51, "Status": "SUCCESS"}

    def handler_52(self, event, context):
        """Handles step 52 of the resource lifecycle."""
        logger.debug("step 52: %s", json.dumps(event))
        return {"Step": 52, "Status": "SUCCESS"}

    def handler_53(self, event, context):
        """Handles step 53 of the resource lifecycle."""
        logger.debug("step 53: %s", json.dumps(event))
        return {"Step": 53, "Status": "SUCCESS"}

    def handler_54(self, event, context):
        """Handles step 54 of the resource lifecycle."""
        logger.debug("step 54: %s", json.dumps(event))
        return {"Step": 54, "Status": "SUCCESS"}

    def handler_55(self, event, context):
        """Handles step 55 of the resource lifecycle."""
        logger.debug("step 55: %s", json.dumps(event))
        return {"Step": 55, "Status": "SUCCESS"}

    def handler_56(self, event, context):
        """Handles step 56 of the resource lifecycle."""
        logger.debug("step 56: %s", json.dumps(event))
        return {"Step": 56, "Status": "SUCCESS"}

    def handler_57(self, event, context):
        """Handles step 57 of the resource lifecycle."""
        logger.debug("step 57: %s", json.dumps(event))
        return {"Step": 57, "Status": "SUCCESS"}

    def handler_58(self, event, context):
        """Handles step 58 of the resource lifecycle."""
        logger.debug("step 58: %s", json.dumps(event))
        return {"Step": 58, "Status": "SUCCESS"}

    def handler_59(self, event, context):
        """Handles step 59 of the resource lifecycle."""
        logger.debug("step 59: %s", json.dumps(event))
        return {"Step": 59, "Status": "SUCCESS"}

