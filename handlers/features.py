"""Import every feature module so its keywords, flows and menu items are registered."""

import handlers.followups  # noqa: F401  (WENT, MISSED, NORUN, REMIND)
import handlers.tools  # noqa: F401  (URGE, CBA, MYCBA, CHECKIN, PLAN, MYDATA, DELETE)
from handlers import link_channel, meetings, menu  # noqa: F401
