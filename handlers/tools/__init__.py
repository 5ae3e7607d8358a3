"""SMART tools: URGE, CBA, CHECKIN, PLAN, MYDATA and DELETE; the WHATSAPP choice.

Importing this package registers their keywords, flows and menu items.
"""

from handlers.tools import (  # noqa: F401
    back,
    cba,
    checkin,
    discreet,  # DISCREET ON / OFF (CYNNIL YMLAEN / DIFFODD)
    mydata,
    plan,
    urge,
    whatsapp_pref,  # noqa: F401  (WHATSAPP WAIT / SMS)
)
