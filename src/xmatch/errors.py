"""Exceptions and the user-facing messages they carry.

Every error xmatch raises on purpose is an :class:`XmatchError`; its ``status`` names the
gRPC status code a server answers it with. Anything else that escapes a request is a bug,
answered INTERNAL and logged with its traceback (:mod:`xmatch.service.codec`). Messages
that two or more modules give are built here, so tests reuse the same wording.
"""

from __future__ import annotations


class XmatchError(Exception):
    """Base class of every error xmatch raises on purpose: a user error, one line."""

    status = "INVALID_ARGUMENT"


class InputError(XmatchError, ValueError):
    """A value, option or request that is not allowed (a ``ValueError`` too, for callers
    that treat every bad argument alike)."""


class SpecError(XmatchError):
    """A catalog spec (TOML) is malformed or inconsistent."""


class CatalogNotFoundError(XmatchError):
    """No catalog of that name in the data directory, among the bundled specs, or served."""

    status = "NOT_FOUND"


class UnknownColumnError(InputError):
    """A request names columns the catalog does not have."""

    status = "NOT_FOUND"


class DamagedCatalogError(XmatchError):
    """A published catalog no longer matches its manifest."""

    status = "DATA_LOSS"


class LimitExceededError(XmatchError):
    """A request asks for more than a configured limit allows."""

    status = "RESOURCE_EXHAUSTED"


class UnavailableError(XmatchError):
    """Part of an answer cannot be had now: partitions without a reachable replica, or a
    server that cannot be reached. The message names what is missing."""

    status = "UNAVAILABLE"


class ServiceError(XmatchError):
    """An error answer of an xmatch server, as the client raises it.

    Attributes
    ----------
    code : grpc.StatusCode
        The status of the answer.
    details : str
        The server's message.
    """

    def __init__(self, code, details: str):
        self.code = code
        self.details = details
        self.status = code.name
        super().__init__(f"{code.name}: {details}")


class LoadError(XmatchError):
    """Input rejected by a loader or a reader, located as precisely as the input allows.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed.
    source : str, optional
        File (or other source) the problem was found in.
    row : int, optional
        1-based data row inside ``source`` (header lines are not counted).
    column : str, optional
        Column name.
    """

    def __init__(self, message, *, source=None, row=None, column=None):
        self.message = message
        self.source = source
        self.row = row
        self.column = column
        super().__init__(self.__str__())

    def __str__(self):
        where = []
        if self.source is not None:
            where.append(str(self.source))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def __reduce__(self):
        # Keeps the location fields when the error crosses a process boundary.
        return (_rebuild_load_error, (self.message, self.source, self.row, self.column))


def _rebuild_load_error(message, source, row, column):
    return LoadError(message, source=source, row=row, column=column)


def missing_column(column: str, available) -> str:
    return f"required column '{column}' is missing; columns present: {', '.join(available)}"


def not_numeric(value) -> str:
    return f"value {value!r} is not a number"


def bad_coordinate(kind: str, value) -> str:
    allowed = "0 <= ra <= 360 deg" if kind == "ra" else "-90 <= dec <= 90 deg"
    return f"{kind} = {value!r} is not a finite coordinate in range ({allowed})"


def missing_value(kind: str) -> str:
    return f"{kind} is missing (empty, null or NaN); every row needs one"


def no_rows(source: str) -> str:
    return f"{source} contains no data rows"


def unreadable(kind: str, detail: str) -> str:
    return f"not a readable {kind} file (truncated or corrupt?): {detail}"


def out_of_range(name: str, value, index: int | None, allowed: str) -> str:
    """``index``: position of the bad value in an array (None for a scalar)."""
    where = f" (at position {index})" if index is not None else ""
    return f"{name} = {value!r}{where} is not allowed; {name} must be {allowed}"


def length_mismatch(names_and_lengths: dict) -> str:
    shown = ", ".join(f"{name} has {length}" for name, length in names_and_lengths.items())
    return f"array lengths differ ({shown}); they must all be the same length"


def unknown_columns(unknown, catalog: str, available) -> str:
    return f"unknown column(s) {list(unknown)}; {catalog} has: {', '.join(available)}"


def bad_states(shape) -> str:
    return f"states must be a float array of shape (n, 6), got shape {tuple(shape)}"


def not_finite(name: str, index: int) -> str:
    return f"{name} has a non-finite value at row {index}; all values must be finite"


def bad_epochs(shape, n: int) -> str:
    return f"epoch_tdb_mjd must be a scalar or have shape ({n},), got shape {tuple(shape)}"


def out_of_span(value, index, start_mjd: float, end_mjd: float) -> str:
    """Message for a time DE421 does not cover (``index``: position in the array, or None)."""
    where = f" (at position {index})" if index is not None else ""
    return (f"TDB MJD {value!r}{where} is outside the DE421 span, MJD {start_mjd:g} to "
            f"{end_mjd:g} (1899-07-29 to 2053-10-09)")


def unknown_body(name, known) -> str:
    return f"unknown body {name!r}; known bodies: {', '.join(known)}"


def no_epoch_motion(catalog: str) -> str:
    return (f"{catalog} has no proper motions: its positions are not moved to the epoch "
            "asked for")
