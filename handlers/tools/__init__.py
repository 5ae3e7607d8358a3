"""SMART tools: URGE, CBA, CHECKIN, PLAN, MYDATA and DELETE.

Importing this package registers their keywords, flows and menu items.
"""

from handlers.tools import back, cba, checkin, mydata, plan, urge  # noqa: F401
