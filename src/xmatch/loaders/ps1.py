"""Pan-STARRS1 DR2 mean-object tables: MAST export normalisation and a synthetic catalog.

Two jobs live here:

* :func:`normalize_mast_table` turns a table read from a MAST PS1 DR2 CSV export
  (``MeanObject`` joined with ``ObjectThin``, as the MAST catalog API returns it)
  into the arrow types of :data:`MEAN_OBJECT_SCHEMA`, replacing MAST's ``-999``
  "no value" sentinel by real nulls.
* :func:`synthetic_chunk` / :func:`write_synthetic_parquet` produce a deterministic,
  PS1-*like* catalog for tests and benchmarks when the real 10^10-row catalog is
  not at hand. See :data:`SYNTHETIC_NOTE`.

Synthetic catalog design
------------------------
Rows are produced in fixed blocks of ``_BLOCK_ROWS`` rows; block ``j`` depends only
on ``(seed, j)``. A chunk is just a slice over blocks, so the full catalog is
identical however it is chunked, and any process can build any chunk on its own.

Positions come from rejection sampling, but the proposal is not a free float
draw: every candidate is a globally numbered *objID cell* (one PS1 declination
step of ``0.0083333e-4`` deg times one RA step of ``1e-6`` deg), obtained by
pushing a global candidate counter through a keyed bijection of the cell grid.
Blocks own disjoint counter ranges, so no two rows of the whole catalog can share
a cell, and therefore objIDs (computed with the real PS1 formula from the final
position, which lies strictly inside its cell) are unique by construction, with
no cross-chunk bookkeeping and no need for a collision-breaking digit.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xmatch.errors import InputError

__all__ = [
    "MEAN_OBJECT_SCHEMA",
    "MAST_MISSING",
    "SYNTHETIC_NOTE",
    "ICRS_TO_GALACTIC",
    "normalize_mast_table",
    "ps1_objid",
    "synthetic_chunk",
    "write_synthetic_parquet",
]

# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------

_BANDS = ("g", "r", "i", "z", "y")


def _field(name: str, type_: pa.DataType, unit: str, description: str) -> pa.Field:
    meta = {"description": description}
    if unit:
        meta["unit"] = unit
    return pa.field(name, type_, nullable=True, metadata=meta)


def _build_schema() -> pa.Schema:
    fields = [
        _field("objName", pa.string(), "", "IAU name for this object (ObjectThin.objName)."),
        _field("objID", pa.int64(), "", "Unique PS1 object identifier, derived from position."),
        _field("raMean", pa.float64(), "deg", "Mean right ascension of single epoch detections."),
        _field("decMean", pa.float64(), "deg", "Mean declination of single epoch detections."),
        _field("raMeanErr", pa.float32(), "arcsec", "Right ascension standard deviation."),
        _field("decMeanErr", pa.float32(), "arcsec", "Declination standard deviation."),
        _field("epochMean", pa.float64(), "d", "Modified Julian Date of the mean epoch (MJD)."),
        _field("nDetections", pa.int16(), "", "Number of single epoch detections in all filters."),
    ]
    for b in _BANDS:
        fields.append(_field("n" + b, pa.int16(), "", f"Number of single epoch detections in {b}."))
    for b in _BANDS:
        fields.append(_field(f"{b}MeanPSFMag", pa.float32(), "mag", f"Mean PSF magnitude, {b}."))
        fields.append(_field(f"{b}MeanPSFMagErr", pa.float32(), "mag", f"Its error, {b}."))
    fields.append(_field("qualityFlag", pa.int16(), "", "ObjectQualityFlags bit mask (0-255)."))
    fields.append(_field("objInfoFlag", pa.int32(), "", "ObjectInfoFlags bit mask."))
    return pa.schema(fields)


#: Arrow schema of the PS1 DR2 mean-object columns this project uses. Names are the
#: real MAST ``ObjectThin`` / ``MeanObject`` column names; types are the narrowest
#: arrow types that hold the documented database types (e.g. ``qualityFlag`` is a
#: SQL TINYINT 0-255, which does not fit int8, hence int16).
MEAN_OBJECT_SCHEMA: pa.Schema = _build_schema()

#: MAST's "no value" marker in PS1 DR2 exports (written as ``-999`` or ``-999.0``).
MAST_MISSING: float = -999.0

_MAG_COLUMNS = tuple(f"{b}MeanPSFMag" for b in _BANDS)
_MAG_ERR_COLUMNS = tuple(f"{b}MeanPSFMagErr" for b in _BANDS)
# -999 can never be a real value in these columns (magnitudes, errors, MJD, and
# positions are all far from it), so mapping it to null loses nothing.
_SENTINEL_COLUMNS = frozenset(
    ("raMean", "decMean", "raMeanErr", "decMeanErr", "epochMean") + _MAG_COLUMNS + _MAG_ERR_COLUMNS
)

# ---------------------------------------------------------------------------
# MAST export normalisation
# ---------------------------------------------------------------------------


def _blank_strings_to_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    # pyarrow.csv keeps "" in string-typed columns (strings_can_be_null=False), and
    # a numeric cast cannot parse it; a blank cell means "no value".
    trimmed = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)


def _cast_known(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if col.type == target:
        return col
    is_text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
    if is_text and not pa.types.is_string(target):
        col = _blank_strings_to_null(col)
        if pa.types.is_integer(target) and target != pa.int64():
            # Small counters/flags may be written as "12.0"; go through float64,
            # which is exact for them. objID (int64) is parsed directly because
            # its ~1.7e17 values do not survive a trip through float64.
            col = pc.cast(col, pa.float64())
    # safe=True: refuse to silently truncate a fractional count or overflow int16.
    return pc.cast(col, target, safe=True)


def normalize_mast_table(table: pa.Table) -> pa.Table:
    """Cast a MAST PS1 DR2 mean-object export to :data:`MEAN_OBJECT_SCHEMA` types.

    Parameters
    ----------
    table : pyarrow.Table
        Table read from a MAST PS1 DR2 CSV export (for example with
        :func:`pyarrow.csv.read_csv`). Any subset of the schema's columns may be
        present, typed as integer, floating point or string; columns whose names
        are not in the schema are passed through unchanged.

    Returns
    -------
    pyarrow.Table
        Same columns in the same order. Known columns have the schema's type and
        field metadata; in the position, position-error, epoch, magnitude and
        magnitude-error columns the MAST sentinel ``-999`` (:data:`MAST_MISSING`)
        and blank cells become nulls. Table-level metadata is kept.

    Raises
    ------
    pyarrow.ArrowInvalid
        If a known column holds values that cannot be represented exactly in its
        schema type (for example ``nDetections = 2.5`` or text in ``raMean``).

    Notes
    -----
    Matching is by exact (case-sensitive) column name, as MAST writes them.
    An ``objID`` column that was already parsed as float64 has lost precision
    (objIDs exceed 2**53); read it as string or int64 instead.
    """
    fields = []
    columns = []
    for field, col in zip(table.schema, table.columns, strict=True):
        idx = MEAN_OBJECT_SCHEMA.get_field_index(field.name)
        if idx < 0:
            fields.append(field)
            columns.append(col)
            continue
        target = MEAN_OBJECT_SCHEMA.field(idx)
        col = _cast_known(col, target.type)
        if field.name in _SENTINEL_COLUMNS:
            missing = pc.equal(col, pa.scalar(MAST_MISSING, target.type))
            if pc.any(missing).as_py():  # most chunks have none: skip the copy
                col = pc.if_else(missing, pa.scalar(None, target.type), col)
        fields.append(target)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


# ---------------------------------------------------------------------------
# PS1 objID
# ---------------------------------------------------------------------------

#: Zone height used by PS1 for objID and zoneID; PS1 uses this truncated value of
#: 1/120 deg, not 1/120 itself, so we must too to reproduce their zones.
PS1_ZONE_HEIGHT: float = 0.0083333


def ps1_objid(ra, dec) -> np.ndarray:
    """PS1 objID of positions, as defined by the PS1 archive (``CreatePSPSObjectID``).

    ``objID = izone * 10**13 + int(ra * 1e6) * 10**4 + int(zresid * 1e4)`` with
    ``zid = (dec + 90) / 0.0083333``, ``izone = floor(zid)``, ``zresid = zid - izone``.

    Parameters
    ----------
    ra, dec : array_like
        ICRS coordinates in degrees (``0 <= ra < 360``).

    Returns
    -------
    numpy.ndarray of int64
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    zid = (dec + 90.0) / PS1_ZONE_HEIGHT
    izone = np.floor(zid)
    part3 = ((zid - izone) * 10000.0).astype(np.int64)
    part2 = (ra * 1000000.0).astype(np.int64) * 10000
    return izone.astype(np.int64) * 10_000_000_000_000 + part2 + part3


# ---------------------------------------------------------------------------
# ICRS -> Galactic rotation
# ---------------------------------------------------------------------------


def _rot(axis: int, angle_deg: float) -> np.ndarray:
    # Frame (passive) rotation, the convention of IAU/ERFA and astropy.
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i] = c
    m[j, j] = c
    m[i, j] = s
    m[j, i] = -s
    return m


def _icrs_to_galactic() -> np.ndarray:
    mas = 1.0 / 3_600_000.0
    # ICRS -> FK5(J2000) frame bias, USNO Circular 179 (xi0, eta0, da0), which is
    # what astropy uses; without it the result is off by ~20 mas.
    bias = _rot(0, 19.9 * mas) @ _rot(1, 9.1 * mas) @ _rot(2, -22.9 * mas)
    # FK5(J2000) -> Galactic from the J2000 position of the north Galactic pole
    # and the Galactic longitude of the north celestial pole (IAU 1958 system
    # carried to J2000), same constants as astropy's Galactic frame.
    ra_ngp, dec_ngp = 192.8594812065348, 27.12825118085622
    lon_ncp = 122.0 + 55.0 / 60.0 + 54.90684481 / 3600.0
    fk5_to_gal = _rot(2, 180.0 - lon_ncp) @ _rot(1, 90.0 - dec_ngp) @ _rot(2, ra_ngp)
    return fk5_to_gal @ bias


#: 3x3 matrix taking ICRS unit vectors to Galactic unit vectors (``v_gal = M @ v_icrs``).
ICRS_TO_GALACTIC: np.ndarray = _icrs_to_galactic()
ICRS_TO_GALACTIC.flags.writeable = False

# ---------------------------------------------------------------------------
# Synthetic catalog: constants
# ---------------------------------------------------------------------------

SYNTHETIC_NOTE: str = (
    "SYNTHETIC DATA: this catalog was generated by xmatch.loaders.ps1.synthetic_chunk and "
    "is NOT Pan-STARRS1 data. It mimics the PS1 DR2 mean-object columns (MAST names and "
    "types), the 3pi footprint (dec > -30 deg), a density rising toward the Galactic plane "
    "and bulge, PS1-like magnitudes, errors, detection counts and flag bits, and real-format "
    "objIDs/objNames computed from the synthetic positions. No row corresponds to a real "
    "astronomical source; use it only for testing and benchmarking."
)

_GENERATOR_VERSION = "1"

# Block structure (see module docstring). A block is the unit of determinism.
_BLOCK_ROWS = 1 << 16
_BATCH = 1 << 16  # candidates per rejection round; small enough to stay in cache
_BLOCK_CANDIDATE_BITS = 22  # each block owns 2**22 candidate cells (~7x what it needs)

# objID cell grid covering dec > -30: PS1 zones 7200..21600, 10**4 dec steps per
# zone (objID part3) and 3.6e8 RA steps of 1e-6 deg (objID part2).
_ZONE_MIN = int(math.floor(60.0 / PS1_ZONE_HEIGHT))  # zone containing dec = -30
_ZONE_MAX = int(math.floor(180.0 / PS1_ZONE_HEIGHT))  # zone containing dec = +90
_N_DEC = (_ZONE_MAX - _ZONE_MIN + 1) * 10_000
_N_RA = 360_000_000
_N_CELLS = _N_DEC * _N_RA  # ~5.18e16 < 2**56
_DEC_STEP = PS1_ZONE_HEIGHT * 1e-4
_MASK56 = (1 << 56) - 1
_MAX_BLOCKS = _N_CELLS >> _BLOCK_CANDIDATE_BITS
assert _N_CELLS < (1 << 56)

# Sky density model, relative to isotropic: disc  A * exp(-|b| / h)  plus a bulge
# kernel  B * exp(kappa * (cos(theta_GC) - 1))  (~Gaussian of width 1/sqrt(kappa)).
_DISC_AMP = 15.0
_DISC_SCALE_DEG = 10.0
_BULGE_AMP = 6.0
_BULGE_KAPPA = 1.0 / math.radians(12.0) ** 2
_DENSITY_MAX = 1.0 + _DISC_AMP + _BULGE_AMP
# The mean acceptance per candidate (cos(dec) weight x density / max) is ~0.113,
# so a block needs ~5.8e5 candidates of the 2**22 it owns.

_GAL_X = ICRS_TO_GALACTIC[0].astype(np.float32)  # ICRS direction of the Galactic centre
_GAL_Z = ICRS_TO_GALACTIC[2].astype(np.float32)  # ICRS direction of the north Galactic pole

# Photometry model. Single-epoch 5-sigma depths of the PS1 3pi survey (Chambers et
# al. 2016) drive the per-epoch detection probability and magnitude errors.
_DEPTH5 = np.array([22.0, 21.8, 21.5, 20.9, 19.7])
_EPOCHS_LO = np.array([8, 9, 12, 8, 8])  # PS1 3pi has ~10-20 visits per band
_EPOCHS_HI = np.array([15, 17, 22, 16, 16])
_R_MIN, _R_MAX = 12.0, 23.3
_COUNT_SLOPE = 0.27  # d log10 N / dm, a Galactic-star-like number count

# PS1 ObjectQualityFlags bits (qualityFlag) and ObjectInfoFlags bits (objInfoFlag).
QF_OBJ_EXT, QF_OBJ_EXT_ALT, QF_OBJ_GOOD, QF_OBJ_GOOD_ALT = 1, 2, 4, 8
QF_OBJ_GOOD_STACK, QF_OBJ_BEST_STACK, QF_OBJ_SUSPECT_STACK, QF_OBJ_BAD_STACK = 16, 32, 64, 128
_OI_FEW, _OI_HERN_QSO_P05, _OI_HERN_VARIABLE = 1, 16, 128
_OI_RAW_AVE, _OI_FIT_AVE, _OI_FIT_PM, _OI_FIT_PAR = 4096, 8192, 16384, 32768
_OI_USE_AVE, _OI_USE_PAR = 65536, 262144
# objInfoFlag repeats the eight quality bits from EXT (0x00800000) upward.
_OI_QUALITY_SHIFT = 23

# ---------------------------------------------------------------------------
# Synthetic catalog: sky
# ---------------------------------------------------------------------------

_C1 = np.uint64(0x58476D1CE4E5B9)  # odd multipliers (splitmix64's, cut to 56 bits)
_C2 = np.uint64(0xD049BB133111EB)
_M56 = np.uint64(_MASK56)


def _permute56(x: np.ndarray, k0: np.uint64, k1: np.uint64) -> np.ndarray:
    # A bijection of [0, 2**56): xor/add of a key, multiplication by an odd
    # constant mod 2**56 and x ^= x >> s are each invertible. Mixes a sequential
    # counter into a well spread cell number.
    x = x ^ k0
    x ^= x >> np.uint64(29)
    x *= _C1
    x &= _M56
    x += k1
    x &= _M56
    x ^= x >> np.uint64(26)
    x *= _C2
    x &= _M56
    x ^= x >> np.uint64(31)
    return x


def _cells(counter: np.ndarray, k0: np.uint64, k1: np.uint64) -> np.ndarray:
    # Cycle-walking restricts the 2**56 bijection to a bijection of [0, _N_CELLS).
    out = _permute56(counter, k0, k1)
    todo = np.flatnonzero(out >= np.uint64(_N_CELLS))
    while todo.size:
        v = _permute56(out[todo], k0, k1)
        out[todo] = v
        todo = todo[v >= np.uint64(_N_CELLS)]
    return out


@functools.lru_cache(maxsize=64)
def _cell_key(seed: int) -> tuple[np.uint64, np.uint64]:
    state = np.random.SeedSequence([seed, 1]).generate_state(2, np.uint64)
    return state[0] & _M56, state[1] & _M56


def _sky_block(rng: np.random.Generator, block: int, seed: int):
    """Accepted cell numbers (dec index, RA index) and sin(b) for one block."""
    k0, k1 = _cell_key(seed)
    base = block << _BLOCK_CANDIDATE_BITS
    end = base + (1 << _BLOCK_CANDIDATE_BITS)
    h_rad = np.float32(math.radians(_DISC_SCALE_DEG))
    dec_parts, ra_parts, sinb_parts = [], [], []
    have = 0
    nxt = base
    while have < _BLOCK_ROWS:
        if nxt >= end:  # would need ~7x the expected candidates: never in practice
            raise RuntimeError(f"synthetic block {block} exhausted its candidate range")
        m = min(_BATCH, end - nxt)
        cell = _cells(np.arange(nxt, nxt + m, dtype=np.uint64), k0, k1)
        nxt += m
        dec_idx = cell // np.uint64(_N_RA)
        ra_idx = cell - dec_idx * np.uint64(_N_RA)
        # Global dec step index K = zone * 1e4 + part3; dec of the cell's lower edge.
        k_dec = dec_idx.astype(np.int64) + _ZONE_MIN * 10_000
        dec_lo = k_dec * _DEC_STEP - 90.0
        # Cells must lie entirely in (-30, 90] so any jitter keeps dec in range.
        inside = (dec_lo > -30.0) & (dec_lo + _DEC_STEP <= 90.0)
        # Acceptance only needs ~1e-6 precision: float32 trig is plenty and fast.
        dec_r = np.radians(dec_lo.astype(np.float32))
        ra_r = np.radians(ra_idx.astype(np.float32) * np.float32(1e-6))
        cd = np.cos(dec_r)
        sd = np.sin(dec_r)
        x = cd * np.cos(ra_r)
        y = cd * np.sin(ra_r)
        sinb = _GAL_Z[0] * x + _GAL_Z[1] * y + _GAL_Z[2] * sd
        cosgc = _GAL_X[0] * x + _GAL_X[1] * y + _GAL_X[2] * sd
        absb = np.arcsin(np.clip(np.abs(sinb), 0.0, 1.0))
        dens = (
            1.0
            + np.float32(_DISC_AMP) * np.exp(-absb / h_rad)
            + np.float32(_BULGE_AMP) * np.exp(np.float32(_BULGE_KAPPA) * (cosgc - 1.0))
        )
        # Proposal is uniform in (dec, ra); the cos(dec) factor makes it uniform
        # on the sphere, the density factor imposes the Galactic structure.
        u = rng.random(m, dtype=np.float32)
        acc = np.flatnonzero(inside & (u * np.float32(_DENSITY_MAX) < dens * cd))
        acc = acc[: _BLOCK_ROWS - have]
        dec_parts.append(k_dec[acc])
        ra_parts.append(ra_idx[acc].astype(np.int64))
        sinb_parts.append(sinb[acc])
        have += acc.size
    return np.concatenate(dec_parts), np.concatenate(ra_parts), np.concatenate(sinb_parts)


# ---------------------------------------------------------------------------
# Synthetic catalog: photometry and flags
# ---------------------------------------------------------------------------


def _photometry(rng: np.random.Generator, absb_deg: np.ndarray) -> dict:
    # float32 throughout: the outputs are float32 anyway, and numpy's float32
    # exp/log are vectorised (an order of magnitude faster than float64 here).
    n = absb_deg.size
    f32 = np.float32
    # r from a truncated exponential number count, log10 N(<m) ~ slope * m.
    lo, hi = 10.0 ** (_COUNT_SLOPE * _R_MIN), 10.0 ** (_COUNT_SLOPE * _R_MAX)
    u = rng.random(n, dtype=f32)
    r = np.log10(f32(lo) + u * f32(hi - lo)) / f32(_COUNT_SLOPE)
    # Colours share one "temperature" deviate so g-r, r-i, ... are correlated like
    # a stellar locus; marginally g-r ~ N(0.6, 0.3).
    t = rng.standard_normal(n, dtype=f32)
    e = rng.standard_normal((3, n), dtype=f32)
    gr = f32(0.6) + f32(0.3) * t
    ri = f32(0.25) + f32(0.16) * t + f32(0.08) * e[0]
    iz = f32(0.10) + f32(0.07) * t + f32(0.05) * e[1]
    zy = f32(0.05) + f32(0.05) * t + f32(0.05) * e[2]
    i_mag = r - ri
    z_mag = i_mag - iz
    true = np.stack([r + gr, r, i_mag, z_mag, z_mag - zy])  # (5, n)

    # Detections per band: epochs observed times per-epoch detection probability
    # (logistic around the single-epoch 5-sigma depth), stochastically rounded.
    span = (_EPOCHS_HI - _EPOCHS_LO + 1).astype(f32)[:, None]
    epochs = _EPOCHS_LO[:, None] + np.floor(rng.random((5, n), dtype=f32) * span)
    margin = _DEPTH5.astype(f32)[:, None] - true
    p_det = f32(1.0) / (f32(1.0) + np.exp(margin * f32(-1.0 / 0.3)))
    nband = np.floor(epochs * p_det + rng.random((5, n), dtype=f32)).astype(np.int16)
    # MeanObject rows have at least one detection: give undetected objects one in
    # the band where they are easiest to see.
    none = np.flatnonzero(nband.sum(axis=0) == 0)
    nband[np.argmax(margin[:, none], axis=0), none] = 1
    # nDetections also counts detections outside grizy (PS1's w band), so it may
    # exceed the per-band sum.
    extra = (rng.random(n, dtype=f32) < 0.08) * rng.integers(1, 4, n, dtype=np.int16)
    ndet = (nband.sum(axis=0, dtype=np.int16) + extra).astype(np.int16)

    # Errors: photon noise of the single-epoch SNR averaged over detections, plus
    # a 4 mmag calibration floor. A detection has SNR >= ~5 by definition, so the
    # per-epoch SNR is floored at 5-8 (faint objects are seen on upward fluctuations).
    snr_floor = f32(5.0) + f32(3.0) * rng.random((5, n), dtype=f32)
    snr1 = np.maximum(f32(5.0) * np.exp(margin * f32(0.4 * math.log(10.0))), snr_floor)
    err = np.sqrt(f32(0.004**2) + (f32(1.0857) / snr1) ** 2 / np.maximum(nband, 1).astype(f32))
    mag = true + err * rng.standard_normal((5, n), dtype=f32)

    # Astrometric error ~ FWHM / (2.35 SNR) per epoch (1.1" seeing) in the best
    # band, averaged over detections, with a 10 mas floor.
    pos = np.sqrt(f32(0.010**2) + (f32(0.47) / snr1.max(axis=0)) ** 2 / ndet.astype(f32))
    scatter = np.exp(f32(0.15) * rng.standard_normal((2, n), dtype=f32))
    ra_err = np.minimum(pos * scatter[0], f32(0.5))
    dec_err = np.minimum(pos * scatter[1], f32(0.5))
    epoch = np.clip(56000.0 + 320.0 * rng.standard_normal(n), 55000.0, 57000.0)

    # qualityFlag: the PS1 bits, switched on by the situations they describe.
    u = rng.random((6, n), dtype=f32)
    ext_p = f32(0.02) + f32(0.45) / (f32(1.0) + np.exp(f32(20.0) - r)) * (
        f32(1.0) - np.exp(absb_deg.astype(f32) * f32(-1.0 / 12.0))
    )
    ext = u[0] < ext_p
    good = ndet >= 3
    good_alt = (r < 17.5) & (u[1] < 0.9)  # a 2MASS counterpart
    ext_alt = ext & good_alt & (r < 16.5)
    stack_mag = r + f32(0.4) * rng.standard_normal(n, dtype=f32)
    good_stack = stack_mag < 22.4
    bad_stack = stack_mag > 23.1
    suspect = ~good_stack & ~bad_stack
    best = np.where(good_stack, u[2] < 0.95, np.where(suspect, u[2] < 0.5, u[2] < 0.1))
    qf = np.zeros(n, dtype=np.int16)
    for bit, on in (
        (QF_OBJ_EXT, ext),
        (QF_OBJ_EXT_ALT, ext_alt),
        (QF_OBJ_GOOD, good),
        (QF_OBJ_GOOD_ALT, good_alt),
        (QF_OBJ_GOOD_STACK, good_stack),
        (QF_OBJ_BEST_STACK, best),
        (QF_OBJ_SUSPECT_STACK, suspect),
        (QF_OBJ_BAD_STACK, bad_stack),
    ):
        qf[on] |= bit

    # objInfoFlag: quality bits shifted up, the astrometric fit used, rare labels.
    info = qf.astype(np.int32) << _OI_QUALITY_SHIFT
    many = ndet >= 5
    info[many] |= _OI_FIT_AVE | _OI_FIT_PM | _OI_FIT_PAR
    info[many & (u[3] < 0.8)] |= _OI_USE_PAR
    info[many & (u[3] >= 0.8)] |= _OI_USE_AVE
    info[~many] |= _OI_RAW_AVE | _OI_USE_AVE
    info[ndet <= 2] |= _OI_FEW
    info[u[4] < 0.01] |= _OI_HERN_VARIABLE
    info[(u[5] < 0.01) & (absb_deg > 20.0)] |= _OI_HERN_QSO_P05

    return {
        "nDetections": ndet,
        "nband": nband,
        "mag": mag,
        "err": err,
        "raMeanErr": ra_err,
        "decMeanErr": dec_err,
        "epochMean": epoch,
        "qualityFlag": qf,
        "objInfoFlag": info,
    }


@functools.lru_cache(maxsize=4)
def _block(seed: int, block: int) -> dict:
    """All columns (numpy) of one synthetic block; cached so adjacent chunks share it."""
    rng = np.random.default_rng([seed, 0, block])
    k_dec, ra_idx, sinb = _sky_block(rng, block, seed)
    # Final position strictly inside its objID cell (2 % margins on each side), so
    # the PS1 formula applied to raMean/decMean gives back exactly this cell.
    jit = 0.02 + 0.96 * rng.random((2, k_dec.size))
    ra = (ra_idx + jit[0]) * 1e-6
    dec = (k_dec + jit[1]) * _DEC_STEP - 90.0
    zone = k_dec // 10_000
    objid = zone * 10_000_000_000_000 + ra_idx * 10_000 + (k_dec - zone * 10_000)
    absb = np.degrees(np.arcsin(np.minimum(np.abs(sinb), np.float32(1.0))))
    cols = _photometry(rng, absb)
    cols["objID"] = objid
    cols["raMean"] = ra
    cols["decMean"] = dec
    for v in cols.values():
        v.flags.writeable = False
    return cols


# ASCII digits of 0..99 and 0..999, so names are built with gathers instead of
# one integer division per character.
_DIGITS2 = np.array([list(b"%02d" % i) for i in range(100)], dtype=np.uint8)
_DIGITS3 = np.array([list(b"%03d" % i) for i in range(1000)], dtype=np.uint8)


def _obj_names(ra: np.ndarray, dec: np.ndarray) -> pa.Array:
    """``PSO Jhhmmss.sss+ddmmss.sss`` names, built as one fixed-width byte buffer."""
    n = ra.size
    # Truncate (not round), the IAU convention, which also avoids "60.000" carries.
    ra_ms = np.floor(ra * 240_000.0).astype(np.int64)  # milliseconds of time
    dec_mas = np.floor(np.abs(dec) * 3_600_000.0).astype(np.int64)
    ra_s, ra_frac = np.divmod(ra_ms, 1000)
    ra_m, ra_sec = np.divmod(ra_s, 60)
    ra_h, ra_min = np.divmod(ra_m, 60)
    de_s, de_frac = np.divmod(dec_mas, 1000)
    de_m, de_sec = np.divmod(de_s, 60)
    de_d, de_min = np.divmod(de_m, 60)
    width = 26
    buf = np.empty((n, width), dtype=np.uint8)
    buf[:, 0:5] = np.frombuffer(b"PSO J", dtype=np.uint8)
    buf[:, 5:7] = _DIGITS2[ra_h]
    buf[:, 7:9] = _DIGITS2[ra_min]
    buf[:, 9:11] = _DIGITS2[ra_sec]
    buf[:, 11] = ord(".")
    buf[:, 12:15] = _DIGITS3[ra_frac]
    buf[:, 15] = np.where(dec < 0.0, ord("-"), ord("+"))
    buf[:, 16:18] = _DIGITS2[de_d]
    buf[:, 18:20] = _DIGITS2[de_min]
    buf[:, 20:22] = _DIGITS2[de_sec]
    buf[:, 22] = ord(".")
    buf[:, 23:26] = _DIGITS3[de_frac]
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1))]
    )


def _rows(seed: int, start: int, stop: int) -> pa.Table:
    """Rows ``[start, stop)`` of the synthetic catalog for ``seed``."""
    first, last = start // _BLOCK_ROWS, (stop - 1) // _BLOCK_ROWS
    pieces = []
    for b in range(first, last + 1):
        lo = max(start - b * _BLOCK_ROWS, 0)
        hi = min(stop - b * _BLOCK_ROWS, _BLOCK_ROWS)
        blk = _block(seed, b)
        pieces.append({k: v[..., lo:hi] for k, v in blk.items()})
    cols = {k: np.concatenate([p[k] for p in pieces], axis=-1) for k in pieces[0]}

    nband, mag, err = cols["nband"], cols["mag"], cols["err"]
    missing = nband == 0  # no detection in a band -> no mean magnitude
    arrays = {
        "objName": _obj_names(cols["raMean"], cols["decMean"]),
        "objID": pa.array(cols["objID"], pa.int64()),
        "raMean": pa.array(cols["raMean"], pa.float64()),
        "decMean": pa.array(cols["decMean"], pa.float64()),
        "raMeanErr": pa.array(cols["raMeanErr"], pa.float32()),
        "decMeanErr": pa.array(cols["decMeanErr"], pa.float32()),
        "epochMean": pa.array(cols["epochMean"], pa.float64()),
        "nDetections": pa.array(cols["nDetections"], pa.int16()),
        "qualityFlag": pa.array(cols["qualityFlag"], pa.int16()),
        "objInfoFlag": pa.array(cols["objInfoFlag"], pa.int32()),
    }
    for i, b in enumerate(_BANDS):
        arrays["n" + b] = pa.array(nband[i], pa.int16())
        arrays[f"{b}MeanPSFMag"] = pa.array(mag[i], pa.float32(), mask=missing[i])
        arrays[f"{b}MeanPSFMagErr"] = pa.array(err[i], pa.float32(), mask=missing[i])
    return pa.Table.from_arrays(
        [arrays[name] for name in MEAN_OBJECT_SCHEMA.names], schema=MEAN_OBJECT_SCHEMA
    )


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def synthetic_chunk(
    n_rows_total: int, chunk_index: int, chunk_rows: int, seed: int = 0
) -> pa.Table:
    """One chunk of the deterministic synthetic PS1-like mean-object catalog.

    Parameters
    ----------
    n_rows_total : int
        Number of rows of the whole catalog.
    chunk_index : int
        Which chunk, ``0 <= chunk_index < ceil(n_rows_total / chunk_rows)``.
    chunk_rows : int
        Rows per chunk (the last chunk may be shorter).
    seed : int, default 0
        Non-negative catalog seed.

    Returns
    -------
    pyarrow.Table
        Rows ``[chunk_index * chunk_rows, min((chunk_index + 1) * chunk_rows,
        n_rows_total))`` of the catalog, with exactly :data:`MEAN_OBJECT_SCHEMA`.

    Raises
    ------
    ValueError
        For negative sizes or seed, non-positive ``chunk_rows``, or a catalog
        larger than the objID cell grid supports (~8e14 rows).
    IndexError
        If ``chunk_index`` is outside the catalog.

    Notes
    -----
    Row ``k`` of the catalog depends only on ``(seed, k)``: rows live in fixed
    blocks of 65,536 rows, block ``j`` is drawn from
    ``numpy.random.default_rng([seed, 0, j])``. So a chunk is identical in every
    process, and concatenating the chunks of any chunking gives the same catalog;
    ``n_rows_total`` only decides where the catalog ends.

    Content: dec > -30 deg only, density ``1 + 15 exp(-|b| / 10 deg)`` plus a bulge
    term toward the Galactic centre; r between 12 and 23.3 from a steep number
    count, correlated colours (g - r ~ N(0.6, 0.3)); per-band detection counts from
    PS1-like depths, null magnitudes where a band has no detection; real PS1
    ``qualityFlag``/``objInfoFlag`` bits; objID from the PS1 formula (unique over
    the whole catalog by construction) and objName ``PSO Jhhmmss.sss+ddmmss.sss``.
    """
    seed = _check_seed(seed)
    if n_rows_total < 0:
        raise InputError(f"n_rows_total must be >= 0, got {n_rows_total}")
    if chunk_rows <= 0:
        raise InputError(f"chunk_rows must be > 0, got {chunk_rows}")
    if -(-n_rows_total // _BLOCK_ROWS) > _MAX_BLOCKS:
        raise InputError(f"n_rows_total={n_rows_total} exceeds the synthetic catalog capacity")
    start = chunk_index * chunk_rows
    if chunk_index < 0 or start >= n_rows_total:
        raise IndexError(
            f"chunk_index {chunk_index} out of range for {n_rows_total} rows "
            f"in chunks of {chunk_rows}"
        )
    return _rows(seed, start, min(start + chunk_rows, n_rows_total))


def write_synthetic_parquet(
    path,
    n_rows: int,
    seed: int = 0,
    chunk_rows: int = 1_000_000,
    row_group_rows: int = 1_000_000,
    progress: bool = False,
) -> None:
    """Write the synthetic catalog to a Parquet file, one chunk in memory at a time.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. Written to ``<path>.tmp`` first and renamed on success, so an
        interrupted run never leaves a truncated file under ``path``.
    n_rows : int
        Number of rows.
    seed : int, default 0
        Catalog seed (see :func:`synthetic_chunk`).
    chunk_rows : int, default 1_000_000
        Rows generated per step; bounds memory together with ``row_group_rows``.
    row_group_rows : int, default 1_000_000
        Rows per Parquet row group (the last one may be shorter).
    progress : bool, default False
        Show a ``tqdm`` progress bar if tqdm is installed.

    Notes
    -----
    The file's schema is :data:`MEAN_OBJECT_SCHEMA` plus file-level metadata
    ``xmatch_synthetic="true"``, ``generator="xmatch.loaders.ps1.synthetic_chunk"``,
    ``seed``, and for provenance ``n_rows``, ``generator_version`` and ``note``
    (:data:`SYNTHETIC_NOTE`). The content equals the concatenation of
    ``synthetic_chunk(n_rows, i, chunk_rows, seed)`` for all ``i``.
    """
    seed = _check_seed(seed)
    if n_rows < 0:
        raise InputError(f"n_rows must be >= 0, got {n_rows}")
    if chunk_rows <= 0 or row_group_rows <= 0:
        raise InputError("chunk_rows and row_group_rows must be > 0")
    n_chunks = -(-n_rows // chunk_rows)
    meta = {
        "xmatch_synthetic": "true",
        "generator": "xmatch.loaders.ps1.synthetic_chunk",
        "seed": str(seed),
        "n_rows": str(n_rows),
        "generator_version": _GENERATOR_VERSION,
        "note": SYNTHETIC_NOTE,
    }
    schema = MEAN_OBJECT_SCHEMA.with_metadata(meta)
    chunks = range(n_chunks)
    if progress:
        try:
            from tqdm import tqdm

            chunks = tqdm(chunks, total=n_chunks, unit="chunk", desc="synthetic PS1")
        except ImportError:
            pass
    path = os.fspath(path)
    tmp = path + ".tmp"
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            # Row groups may span chunks: buffer until a full group is available.
            pending: list[pa.Table] = []
            buffered = 0
            for i in chunks:
                t = synthetic_chunk(n_rows, i, chunk_rows, seed)
                pending.append(t)
                buffered += t.num_rows
                if buffered >= row_group_rows:
                    table = pa.concat_tables(pending)
                    full = (buffered // row_group_rows) * row_group_rows
                    writer.write_table(table.slice(0, full), row_group_size=row_group_rows)
                    buffered -= full
                    # Keep only a real remainder; an empty slice would pin the buffers.
                    pending = [table.slice(full)] if buffered else []
                    del table, t
            if buffered or n_rows == 0:
                table = pa.concat_tables(pending) if pending else schema.empty_table()
                writer.write_table(table, row_group_size=row_group_rows)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------
# Loaders (registered as entry points "ps1_mast" and "ps1_synthetic")
# ---------------------------------------------------------------------------


def _normalized_chunk(read, args, source: str) -> pa.Table:
    from xmatch.errors import LoadError

    try:
        return normalize_mast_table(read(*args))
    except (pa.ArrowInvalid, ValueError) as exc:
        raise LoadError(f"not a valid MAST PS1 DR2 export: {exc}", source=source) from None


class MastExportLoader:
    """MAST PS1 DR2 mean-object exports, in any format the table loader reads."""

    name = "ps1_mast"
    description = ("MAST PS1 DR2 mean-object export (CSV/Parquet/FITS/VOTable with MAST's "
                   "column names; -999 becomes null)")
    synthetic = False

    def chunks(self, source, spec, chunk_rows):
        from xmatch.loaders import Chunk
        from xmatch.loaders.table import LOADER as TABLE_LOADER

        for chunk in TABLE_LOADER.chunks(source, spec, chunk_rows):
            yield Chunk(chunk.source, chunk.first_row, chunk.n_rows, _normalized_chunk,
                        (chunk.read, chunk.args, chunk.source))


class SyntheticLoader:
    """The deterministic synthetic PS1-like catalog; ``loader_options`` give rows and seed."""

    name = "ps1_synthetic"
    description = "deterministic SYNTHETIC PS1 DR2-like rows (loader_options: rows, seed)"
    synthetic = True

    def chunks(self, source, spec, chunk_rows):
        from xmatch.loaders import Chunk

        rows = int(spec.loader_options.get("rows", 1_000_000))
        seed = _check_seed(int(spec.loader_options.get("seed", 0)))
        # Whole generator blocks per chunk, so no block is generated twice.
        chunk_rows = max(_BLOCK_ROWS, -(-chunk_rows // _BLOCK_ROWS) * _BLOCK_ROWS)
        label = f"synthetic PS1 DR2-like catalog (seed {seed}, {rows} rows)"
        for index in range(-(-rows // chunk_rows)):
            first = index * chunk_rows
            yield Chunk(label, first + 1, min(chunk_rows, rows - first), synthetic_chunk,
                        (rows, index, chunk_rows, seed))


MAST_LOADER = MastExportLoader()
SYNTHETIC_LOADER = SyntheticLoader()
