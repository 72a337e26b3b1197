"""Every on-disk name of the catalog store, in one place.

The layout is HATS v1.0 (as written and read by hats / LSDB)::

    <catalog>/hats.properties
    <catalog>/properties                      (copy of hats.properties, older readers)
    <catalog>/partition_info.csv              Norder,Npix
    <catalog>/skymap.fits                     row counts at SKYMAP_ORDER (sparse)
    <catalog>/point_map.fits                  row counts at the highest order (the MOC)
    <catalog>/dataset/_metadata
    <catalog>/dataset/_common_metadata
    <catalog>/dataset/Norder=K/Dir=D/Npix=N.parquet
    <catalog>/xmatch.json                     our own metadata (spec, provenance)
    <catalog>/manifest.json                   size and sha256 of every file above

A data directory holds one entry per catalog name, a symbolic link to the published
version, so that publishing a new version is a single atomic ``rename``::

    <data>/<name> -> .versions/<name>/<version>
    <data>/.versions/<name>/<version>/...
    <data>/.staging/<name>-<random>/...       loads in progress (never visible)
"""

from __future__ import annotations

from pathlib import Path

HEALPIX29_COLUMN = "_healpix_29"
#: The row number a load adds to catalogs without an identifier column.
ROW_ID_COLUMN = "xmatch_row"
HEALPIX29_ORDER = 29
PARTITION_ORDER = "Norder"
PARTITION_DIR = "Dir"
PARTITION_PIXEL = "Npix"
DIR_DIVISOR = 10_000

DATASET_DIR = "dataset"
PROPERTIES_FILE = "hats.properties"
LEGACY_PROPERTIES_FILE = "properties"
PARTITION_INFO_FILE = "partition_info.csv"
METADATA_FILE = "_metadata"
COMMON_METADATA_FILE = "_common_metadata"
SKYMAP_FILE = "skymap.fits"
POINT_MAP_FILE = "point_map.fits"
SIDECAR_FILE = "xmatch.json"
MANIFEST_FILE = "manifest.json"

VERSIONS_DIR = ".versions"
STAGING_DIR = ".staging"
REGISTERED_DIR = ".registered"
SPILL_DIR = "_spill"

HATS_VERSION = "v1.0"
DATA_ENV_VAR = "XMATCH_DATA"


def partition_file(order: int, pixel: int, suffix: str = ".parquet") -> str:
    """Path of a partition relative to the catalog root."""
    directory = (pixel // DIR_DIVISOR) * DIR_DIVISOR
    return (
        f"{DATASET_DIR}/{PARTITION_ORDER}={order}/{PARTITION_DIR}={directory}/"
        f"{PARTITION_PIXEL}={pixel}{suffix}"
    )


def dataset_dir(catalog_root: Path) -> Path:
    return catalog_root / DATASET_DIR


def is_hats_catalog(path: Path) -> bool:
    return (path / PROPERTIES_FILE).is_file() or (path / LEGACY_PROPERTIES_FILE).is_file()
