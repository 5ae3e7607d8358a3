"""Storage errors.

StorageError
 +-- DatabaseURLError      the DATABASE_URL cannot be understood
 +-- NotFound              a row that must exist does not
 +-- LinkCodeError         a link code is unknown, used or expired
 +-- StaffExists           a staff account with that email already exists
 +-- RegionError           a region is badly defined, already exists or is unknown
 +-- BackupError           a backup cannot be made or restored
"""


class StorageError(Exception):
    """Base class for storage errors."""


class DatabaseURLError(StorageError):
    """The database URL cannot be understood."""


class NotFound(StorageError):
    """A row that must exist does not."""


class LinkCodeError(StorageError):
    """A link code is unknown, already used or expired."""


class StaffExists(StorageError):
    """A staff account with that email already exists."""


class RegionError(StorageError):
    """A region is badly defined, already exists, or no region has that name."""


class BackupError(StorageError):
    """A backup cannot be made or restored; the message says why in one line."""
