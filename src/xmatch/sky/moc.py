"""MOCs (IVOA MOC 2.0) from every form users have them in: ASCII, JSON and FITS (NUNIQ or
RANGE), NUNIQ lists, files and ``mocpy`` objects. Malformed input is refused with a message
that says what was wrong, before mocpy's own parser sees it (mocpy accepts some bad cells
and fails later, or drops them quietly). And MOCs written out: :func:`moc_bytes` gives the
IVOA MOC 2.0 documents (FITS, ASCII, JSON) of a catalog's coverage (the ``Coverage`` RPC,
``xmatch coverage``) and :data:`MOC_CONTENT_TYPES` their media types."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from xmatch.errors import InputError, out_of_range
from xmatch.sky.healpix import MAX_ORDER

_ORDER_PATTERN = re.compile(r"(\d+)\s*/")


def moc_from(value):
    """A :class:`mocpy.MOC` from a MOC; an IVOA MOC 2.0 ASCII string (``"3/1-5 4/120"``);
    MOC JSON text (``'{"3": [1, 2]}'``); FITS bytes; or the path of a FITS, ASCII or JSON
    MOC file. Malformed input raises ``InputError`` saying what was wrong."""
    from mocpy import MOC

    if isinstance(value, MOC):
        return value
    if isinstance(value, bytes):
        return _moc_from_fits(value, "the FITS bytes")
    if isinstance(value, Path) or (isinstance(value, str) and _looks_like_path(value)):
        path = Path(value)
        if not path.is_file():
            raise InputError(f"MOC file {path} does not exist")
        data = path.read_bytes()
        if data[:6] == b"SIMPLE":
            return _moc_from_fits(data, str(path))
        return _moc_from_text(data.decode("utf-8", errors="replace"), str(path))
    if isinstance(value, str):
        return _moc_from_text(value, "the MOC string")
    raise InputError(f"a MOC is given as a MOC, ASCII or JSON text, FITS bytes or a path, "
                     f"not {type(value).__name__}")


def _looks_like_path(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped[0].isdigit() and stripped[0] != "{"


def _moc_from_text(text: str, where: str):
    from mocpy import MOC

    stripped = text.strip()
    if not stripped:
        raise InputError(f"{where} is empty; an ASCII MOC looks like '3/1-5 4/120'")
    kind = "json" if stripped.startswith("{") else "ascii"
    if kind == "json":
        try:
            orders = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise InputError(f"{where} is not valid MOC JSON: {error}") from None
        if not isinstance(orders, dict):
            raise InputError(f"{where}: MOC JSON maps orders to lists of cells, e.g. "
                             '{"3": [1, 2]}')
        _check_orders([int(k) for k in orders if str(k).isdigit()], where)
        bad = [k for k in orders if not str(k).isdigit()]
        if bad:
            raise InputError(f"{where}: MOC JSON key {bad[0]!r} is not an order")
        for order, cells in orders.items():
            if not (isinstance(cells, list) and all(isinstance(c, int) for c in cells)):
                raise InputError(f"{where}: MOC JSON maps orders to lists of cells, e.g. "
                                 f'{{"3": [1, 2]}}; order {order} has {cells!r}')
            for cell in cells:
                _check_cells(int(order), cell, cell, where)
    else:
        _check_orders([int(m) for m in _ORDER_PATTERN.findall(stripped)], where)
        _check_ascii_cells(stripped, where)
    try:
        return MOC.from_string(stripped, format=kind)
    except (OSError, ValueError) as error:  # mocpy's parser reports through OSError
        detail = str(error).strip().splitlines()[0]
        raise InputError(f"{where} is not a valid {kind.upper()} MOC ({detail}); an ASCII "
                         "MOC looks like '3/1-5 4/120'") from None


def _check_ascii_cells(text: str, where: str) -> None:
    """Refuse cells of an ASCII MOC outside their order, or ranges running backwards (mocpy
    would accept some and fail later, or quietly drop them); syntax errors are left to
    mocpy's parser."""
    order = None
    for token in re.split(r"[\s,]+", text):
        if "/" in token:
            head, _, token = token.partition("/")
            if not head.isdigit():
                return
            order = int(head)
        if not token:
            continue
        first, dash, last = token.partition("-")
        if order is None or not first.isdigit() or (dash and not last.isdigit()):
            return
        _check_cells(order, int(first), int(last) if dash else int(first), where)


def _check_cells(order: int, first: int, last: int, where: str) -> None:
    cells = 12 * 4 ** order
    if first < 0 or last >= cells:
        raise InputError(f"{where}: cell {last if last >= cells else first} is not a cell of "
                         f"order {order}, whose cells run from 0 to {cells - 1}")
    if first > last:
        raise InputError(f"{where}: cell range {first}-{last} at order {order} runs backwards")


def _moc_from_fits(data: bytes, where: str):
    from astropy.io import fits
    from mocpy import MOC

    try:
        with fits.open(io.BytesIO(data)) as hdus:
            names = (hdus[1].columns.names or []) if len(hdus) > 1 and hasattr(
                hdus[1], "columns") else []
            if "UNIQ" in names:  # MOC 1.x and 2.0 ORDERING = NUNIQ
                return moc_from_nuniq(np.asarray(hdus[1].data["UNIQ"], np.int64), where)
            if "RANGE" in names:  # MOC 2.0 ORDERING = RANGE: order-29 [start, stop) pairs
                ranges = np.asarray(hdus[1].data["RANGE"], np.int64).reshape(-1, 2)
                depth = int(hdus[1].header.get("MOCORD_S", MAX_ORDER))
                _check_orders([depth], where)
                if len(ranges) and not (0 <= ranges.min() and ranges.max() <= 12 * 4 ** 29
                                        and (ranges[:, 0] < ranges[:, 1]).all()):
                    raise InputError(f"{where}: RANGE values must be increasing order-29 "
                                     "pairs within the sphere")
                return MOC.from_depth29_ranges(depth, ranges)
            raise InputError(f"{where}: a FITS MOC has a UNIQ or RANGE column in its first "
                             f"extension; this file has {', '.join(names) or 'none'}")
    except OSError as error:
        raise InputError(f"{where} is not a readable FITS file: {error}") from None


def _check_orders(orders: list[int], where: str) -> None:
    deep = [o for o in orders if o > MAX_ORDER]
    if deep:
        raise InputError(f"{where}: order {deep[0]} is not allowed; MOC orders run from 0 to "
                         f"{MAX_ORDER}")


def moc_from_nuniq(uniq, where: str = "the NUNIQ list"):
    """A MOC from NUNIQ cell numbers (4 * 4**order + ipix)."""
    from mocpy import MOC

    uniq = np.atleast_1d(np.asarray(uniq))
    if uniq.dtype.kind not in "iu":
        raise InputError(f"{where}: NUNIQ numbers are integers, got {uniq.dtype}")
    uniq = uniq.astype(np.int64)
    order, ipix = uniq_to_nested(uniq, where)
    return MOC.from_healpix_cells(ipix, order, max_depth=int(order.max()) if len(order) else 0)


def uniq_to_nested(uniq: np.ndarray, where: str = "UNIQ") -> tuple[np.ndarray, np.ndarray]:
    """(order, nested pixel) of NUNIQ numbers, checked."""
    uniq = np.asarray(uniq, dtype=np.int64)
    bad = np.flatnonzero(uniq < 4)
    if len(bad):
        raise InputError(f"{where}: {int(uniq[bad[0]])} (at position {int(bad[0])}) is not a "
                         "NUNIQ number; they are 4 * 4**order + pixel, so at least 4")
    deep = np.flatnonzero(uniq >= np.int64(4) << (2 * (MAX_ORDER + 1)))
    if len(deep):
        raise InputError(f"{where}: {int(uniq[deep[0]])} (at position {int(deep[0])}) is a cell "
                         f"deeper than order {MAX_ORDER}, the deepest a MOC has")
    order = (np.floor(np.log2(uniq)).astype(np.int64) - 2) // 2
    # log2 can round up just below a power of 4: fix the few it gets wrong.
    order -= (uniq < (np.int64(4) << (2 * order))).astype(np.int64)
    order += (uniq >= (np.int64(4) << (2 * np.minimum(order + 1, MAX_ORDER + 1)))).astype(
        np.int64)
    return order, uniq - (np.int64(4) << (2 * order))


#: Depth of the declination band cut into a catalog's coverage: cells of 3.4 arcmin, kept
#: whole where the band's edge crosses them (the coverage errs on the side of "inside").
COVERAGE_BAND_ORDER = 10


def coverage_moc_ascii(orders, pixels, dec_min_deg: float = -90.0,
                       dec_max_deg: float = 90.0) -> str:
    """A catalog's coverage: the cells of its partitions, cut to the survey's declination
    band when it has one (IVOA MOC 2.0 ASCII; "" when there is no cell)."""
    from astropy.coordinates import SkyCoord
    from mocpy import MOC

    if len(pixels) == 0:
        return ""
    cells = MOC.from_healpix_cells(np.asarray(pixels, np.uint64), np.asarray(orders, np.uint8),
                                   MAX_ORDER)
    if dec_min_deg > -90.0 or dec_max_deg < 90.0:
        band = MOC.from_zone(SkyCoord([[0.0, dec_min_deg], [360.0, dec_max_deg]], unit="deg"),
                             max_depth=COVERAGE_BAND_ORDER)
        cells = cells.intersection(band)
    return cells.to_string(format="ascii").strip()


# ------------------------------------------------------------------------- coverage

#: Deepest order of a coverage (``Coverage`` RPC): cells of 25.8 arcsec. Finer, the MOC of a
#: point catalog stops describing a footprint and becomes a list of its rows (Gaia DR3's 1.8
#: billion rows average about two per order-13 cell), growing with rows rather than area.
COVERAGE_MAX_ORDER = 13
#: The order a face may offer as its default (an HTTP MOC endpoint, saying so): cells of 3.4
#: arcmin, the depth of the declination band cut into a catalog's described coverage. The
#: RPC, the clients and the CLI have no default (0 is an order): the caller says it.
COVERAGE_DEFAULT_ORDER = 10
#: Media type of each MOC serialisation :func:`moc_bytes` writes.
MOC_CONTENT_TYPES = {"fits": "application/fits", "ascii": "text/plain",
                     "json": "application/json"}
COVERAGE_ORDERS = f"an integer from 0 to {COVERAGE_MAX_ORDER} (the HEALPix depth of its cells)"
NO_COVERAGE_ORDER = (f"the order of the coverage is required: {COVERAGE_ORDERS}; there is no "
                     "default, as 0 is an order")


def check_coverage_order(order) -> int:
    """The HEALPix order of a coverage, checked: an integer from 0 to
    :data:`COVERAGE_MAX_ORDER` (``bool`` and floats refused; None: missing)."""
    import numbers

    if order is None:
        raise InputError(NO_COVERAGE_ORDER)
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) \
            or not 0 <= int(order) <= COVERAGE_MAX_ORDER:
        raise InputError(out_of_range("order", order, None, COVERAGE_ORDERS))
    return int(order)


def moc_of_ranges29(ranges29, order: int):
    """The :class:`mocpy.MOC` of sorted, disjoint order-29 ranges ((n, 2), or flattened
    pairs) at ``order``: its max order is ``order`` even when its cells merge into coarser
    ones or there is none (an empty MOC still says its order)."""
    from mocpy import MOC

    ranges = np.asarray(ranges29, dtype=np.int64).reshape(-1, 2)
    return MOC.from_depth29_ranges(int(order), ranges.astype(np.uint64))


def moc_bytes(moc, fmt: str, fits_keywords: dict | None = None) -> bytes:
    """An IVOA MOC 2.0 document of ``moc`` (a :class:`mocpy.MOC`), as mocpy writes it:
    ``fits`` (a binary table of order-29 ranges, MOCVERS = '2.0', MOCDIM = 'SPACE',
    ORDERING = 'RANGE', MOCORD_S = its max order; ``fits_keywords`` add header cards, e.g.
    MOCTYPE = 'CATALOG'), ``ascii`` ("3/1-5 4/120 10/") or ``json`` ('{"3": [1, 2]}'), the
    text ones ending in a newline. An empty MOC is a valid document of its order ("10/").
    Media types: :data:`MOC_CONTENT_TYPES`."""
    if fmt not in MOC_CONTENT_TYPES:
        raise InputError(f"MOC format {fmt!r} is not one of {', '.join(MOC_CONTENT_TYPES)}")
    if fits_keywords and fmt != "fits":
        raise InputError(f"FITS keywords apply to the fits format only, not to {fmt}")
    if fmt == "fits":
        sink = io.BytesIO()
        moc.serialize(format="fits", optional_kw_dict=fits_keywords).writeto(sink)
        return sink.getvalue()
    return (moc.to_string(format=fmt).strip() + "\n").encode()
