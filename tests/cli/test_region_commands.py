"""``xmatch skymap`` and ``xmatch moc``, run through ``xmatch.cli.main`` on a real data
directory: the rows written are the rows ``SkyIndex`` and mocpy find inside the region, in
process and through a real embedded server; ``--plot`` draws a PNG; bad input is one clear
line and exit code 2."""

from __future__ import annotations

import sys

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from mocpy import MOC

from conftest import REAL_SKYMAPS, random_sky_table, read_skymap, skymap_file, skymap_sources
from xmatch import CatalogSpec, DataDirectory, LoadOptions, SkyIndex, load_catalog, open_catalog
from xmatch.cli import main
from xmatch.cli.demo import demo_skymap
from xmatch.service.client import Client
from xmatch.service.embedded import running_server, served_catalogs
from xmatch.sky.regions import SkyMapRegion
from xmatch.sky.skymap import SKYMAP_COLUMNS, SkyMap

GW170817 = skymap_file(REAL_SKYMAPS[0])  # the bundled copy
NGC_4993_ROW = 12  # xmatch_row of NGC 4993 (RA 197.4488, Dec -23.3838) in the GLADE file
SOURCES_SPEC = CatalogSpec(name="gw_sources", id="id", ra="ra", dec="dec", distance="dist",
                           threshold_rows=200, highest_order=8)
SKY_SPEC = CatalogSpec(name="sky", id="id", ra="ra", dec="dec", key=("mag",),
                       threshold_rows=300, highest_order=6)
MOCS = ["3/10-40 4/300-340 6/9000-9100", '{"2": [100, 101, 150], "5": [4000]}', "0/4 1/40"]


def write_multiorder(skymap: SkyMap, path) -> None:
    """``skymap`` as a multi-order FITS file: it reads in milliseconds, where the flat
    GW170817 map takes seconds to merge into multi-order form."""
    Table({"UNIQ": skymap.uniq, "PROBDENSITY": skymap.probdensity, "DISTMU": skymap.distmu,
           "DISTSIGMA": skymap.distsigma, "DISTNORM": skymap.distnorm}).write(path,
                                                                             format="fits")


@pytest.fixture(scope="module")
def maps(tmp_path_factory) -> dict[str, tuple[str, SkyMap]]:
    """GW170817 (bundled, rewritten multi-order) and GW190814 (shared data, if present)."""
    root = tmp_path_factory.mktemp("maps")
    gw170817 = root / "GW170817.multiorder.fits"
    write_multiorder(read_skymap(GW170817), gw170817)
    found = {"GW170817": (str(gw170817), SkyMap.read(gw170817))}
    try:
        gw190814 = skymap_file(REAL_SKYMAPS[1])
    except pytest.skip.Exception:
        return found
    found["GW190814"] = (str(gw190814), read_skymap(gw190814))
    return found


@pytest.fixture(scope="module")
def data(maps, tmp_path_factory) -> DataDirectory:
    """The bundled GLADE galaxies of GW170817, sources around the maps' credible regions
    (with distances) and a random sky without distances, each in many partitions."""
    root = tmp_path_factory.mktemp("cli_regions")
    data = DataDirectory(root / "data")
    options = LoadOptions(workers=1, progress=False)
    load_catalog("glade_gw170817", data=data, options=options)
    pq.write_table(skymap_sources([m for _, m in maps.values()], 1500, seed=5),
                   root / "sources.parquet")
    load_catalog(spec=SOURCES_SPEC, sources=[str(root / "sources.parquet")], data=data,
                 options=options)
    pq.write_table(random_sky_table(6000, seed=9), root / "sky.parquet")
    load_catalog(spec=SKY_SPEC, sources=[str(root / "sky.parquet")], data=data,
                 options=options)
    return data


@pytest.fixture(scope="module")
def indexes(data) -> dict[str, SkyIndex]:
    """Each catalog indexed whole: the answers to compare with."""
    return {name: SkyIndex.from_catalog(open_catalog(name, data)) for name in data.names()}


def xmatch(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``xmatch ARGS``, run in this process."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def inside(moc: MOC, table: pa.Table, ra: str = "ra", dec: str = "dec") -> np.ndarray:
    return moc.contains_lonlat(table[ra].to_numpy() * u.deg, table[dec].to_numpy() * u.deg)


@pytest.mark.parametrize("level, rank_by", [(0.9, None), (0.5, "probdensity"),
                                            (0.9, "probdensity_vol")])
@pytest.mark.parametrize("name", ["GW170817", "GW190814"])
def test_skymap_rows_equal_the_index_and_mocpy(capsys, tmp_path, maps, data, indexes, name,
                                               level, rank_by):
    if name not in maps:
        pytest.skip("shared sky map not available here")
    path, skymap = maps[name]
    out = tmp_path / "rows.parquet"
    code, stdout, _ = xmatch(capsys, "skymap", path, "--catalog", "gw_sources", "--level",
                             level, *(["--rank-by", rank_by] if rank_by else []), "--out",
                             out, "--data", data.root)
    assert code == 0
    got = pq.read_table(out)
    expected = indexes["gw_sources"].skymap_search(skymap, level, rank_by=rank_by)
    expected = expected.drop_columns(["_healpix_29"])  # only in outputs that ask for it
    assert got.num_rows > 100
    assert got.column_names == expected.column_names
    assert got.to_pylist() == expected.to_pylist()
    everything = indexes["gw_sources"].table
    members = everything["id"].to_numpy()[inside(skymap.credible_region(level), everything)]
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()), np.sort(members))
    pixels = skymap.region_pixels(level)
    area = skymap.area[pixels].sum() * (180 / np.pi) ** 2
    assert (f"{100 * level:g}% credible region, {area:,.2f} deg2, probability "
            f"{skymap.prob[pixels].sum():.4f}; {got.num_rows:,} gw_sources row(s) inside"
            in stdout)
    assert f"{got.num_rows:,} rows -> {out}" in stdout
    if rank_by:
        assert f"top 5 by {rank_by}:" in stdout


def test_only_the_partitions_overlapping_the_region_are_read(maps, data, indexes):
    """The partitions a search reads are those its region touches: the others hold no row
    of the region, and the rows found are those of the whole catalog."""
    _, skymap = maps["GW170817"]
    catalog = open_catalog("gw_sources", data)
    region = SkyMapRegion(skymap, 0.5)
    chosen = catalog.partitions_of(region)
    assert len(catalog.partitions) > 10 and 0 < len(chosen) < len(catalog.partitions)
    for partition in set(catalog.partitions) - set(chosen):
        rows = catalog.read_partition(partition, ["ra", "dec"])
        assert not inside(skymap.credible_region(0.5), rows).any(), partition
    index = SkyIndex.from_catalog(catalog, partitions=chosen)
    assert len(index) < len(indexes["gw_sources"])
    assert index.search(region).equals(indexes["gw_sources"].search(region))
    assert catalog.search(region).equals(indexes["gw_sources"].search(region))


def test_gw170817_map_ranks_ngc_4993_first(capsys, data):
    """The bundled flat map, as a user gives it, and the table on standard output with the
    summary on standard error."""
    code, stdout, stderr = xmatch(capsys, "skymap", GW170817, "--catalog", "glade_gw170817",
                                  "--rank-by", "probdensity_vol", "--columns", "Dist,Bmag",
                                  "--level", "0.95", "--data", data.root)
    assert code == 0
    assert stdout.split()[:6] == ["Dist", "Bmag", *SKYMAP_COLUMNS]
    assert "GW170817_skymap.fits.gz: 95% credible region" in stderr
    assert "top 1 by probdensity_vol:" in stderr
    assert f"xmatch_row={NGC_4993_ROW}  ra=197.44878  dec=-23.38383" in stderr


def test_limit_and_columns_keep_the_first_rows_and_asked_columns(capsys, tmp_path, maps, data,
                                                                indexes):
    path, skymap = maps["GW170817"]
    out = tmp_path / "top.csv"
    code, stdout, _ = xmatch(capsys, "skymap", path, "--catalog", "gw_sources", "--rank-by",
                             "probdensity", "--columns", "dist", "--limit", 7, "--out", out,
                             "--data", data.root)
    found = indexes["gw_sources"].skymap_search(skymap, 0.9).num_rows
    assert code == 0 and f"7 of {found:,} rows (cut by --limit 7) -> {out}" in stdout
    got = Table.read(out, format="ascii.csv")
    assert got.colnames == ["dist", *SKYMAP_COLUMNS]
    expected = indexes["gw_sources"].skymap_search(skymap, 0.9, rank_by="probdensity")
    np.testing.assert_allclose(got["probdensity"], expected["probdensity"].to_numpy()[:7],
                               rtol=1e-12)


@pytest.mark.parametrize("form", ["string", "fits file", "json file"])
@pytest.mark.parametrize("text", MOCS)
def test_moc_rows_equal_mocpy(capsys, tmp_path, data, indexes, text, form):
    moc = MOC.from_string(text, format="json" if text.startswith("{") else "ascii")
    given = text
    if form != "string":
        given = tmp_path / f"region.{form.split()[0]}"
        moc.save(given, format=form.split()[0])
    out = tmp_path / "rows.parquet"
    code, stdout, _ = xmatch(capsys, "moc", given, "--catalog", "sky", "--out", out,
                             "--data", data.root)
    assert code == 0
    got = pq.read_table(out)
    expected = indexes["sky"].moc_search(moc.to_depth29_ranges).drop_columns(["_healpix_29"])
    assert got.num_rows > 10 and got.to_pylist() == expected.to_pylist()
    everything = indexes["sky"].table
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()),
                                  np.sort(everything["id"].to_numpy()[inside(moc, everything)]))
    area = moc.sky_fraction * 4 * np.pi * (180 / np.pi) ** 2
    assert (f"{area:,.2f} deg2, max order {moc.max_order}; {got.num_rows:,} sky row(s) inside"
            in stdout)


@pytest.mark.parametrize("command", [["skymap", "GW170817"], ["moc", MOCS[0]]])
def test_plot_writes_a_png(capsys, tmp_path, maps, data, command):
    pytest.importorskip("matplotlib")
    kind, region = command
    region = maps[region][0] if kind == "skymap" else region
    picture = tmp_path / "region.png"
    code, stdout, _ = xmatch(capsys, kind, region, "--catalog", "gw_sources", "--plot",
                             picture, "--out", tmp_path / "rows.csv", "--data", data.root)
    assert code == 0 and f"plot -> {picture}" in stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000


def test_plot_without_matplotlib_says_how_to_install_it(capsys, monkeypatch, data):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    code, stdout, stderr = xmatch(capsys, "moc", MOCS[0], "--catalog", "sky", "--plot",
                                  "x.png", "--data", data.root)
    assert code == 2 and stdout == ""
    assert stderr == ("xmatch moc: error: plotting needs matplotlib: pip install "
                      "'xmatch[plots]'\n")


@pytest.mark.parametrize("args, message", [
    (["skymap", "missing.fits.gz", "--catalog", "gw_sources"],
     "sky map missing.fits.gz does not exist"),
    (["skymap", "{tmp}/stars.fits", "--catalog", "gw_sources"],
     "stars.fits is not an LVK sky map: it has no UNIQ and PROBDENSITY columns (multi-order) "
     "or PROB column (flat); its columns are name, ra, dec"),
    (["skymap", "{map}", "--catalog", "gw_sources", "--level", "1.5"],
     "level = 1.5 is not allowed; a credible level lies in (0, 1]"),
    (["skymap", "{map}", "--catalog", "gw_sources", "--level", "0"],
     "level = 0.0 is not allowed; a credible level lies in (0, 1]"),
    (["skymap", "{map}", "--catalog", "nope"], "no catalog 'nope'"),
    (["skymap", "{map}", "--catalog", "gw_sources", "--rank-by", "brightness"],
     "argument --rank-by: invalid choice: 'brightness' (choose from 'probdensity', "
     "'probdensity_vol')"),
    (["skymap", "{map}", "--catalog", "sky", "--rank-by", "probdensity_vol"],
     "the catalog has no distance column"),
    (["skymap", "{map}", "--catalog", "gw_sources", "--columns", "nope"],
     "unknown column(s) ['nope']"),
    (["skymap", "{map}", "--catalog", "gw_sources", "--plot", "{tmp}/no/such/dir/p.png"],
     "cannot write the plot"),
    (["moc", "3/1-5 4/abc", "--catalog", "sky"], "the MOC string is not a valid ASCII MOC"),
    (["moc", "30/1", "--catalog", "sky"], "the MOC string: order 30 is not allowed"),
    (["moc", '{"3": [1', "--catalog", "sky"], "the MOC string is not valid MOC JSON"),
    (["moc", "missing.fits", "--catalog", "sky"], "MOC file missing.fits does not exist"),
    (["moc", "3/1", "--catalog", "nope"], "no catalog 'nope'"),
])
def test_bad_input_is_one_clear_line_and_exit_2(capsys, tmp_path, maps, data, args, message):
    if "--plot" in args:
        pytest.importorskip("matplotlib")
    Table({"name": ["a", "b"], "ra": [1.0, 2.0], "dec": [3.0, 4.0]}).write(
        tmp_path / "stars.fits")  # a catalog, not a sky map
    args = [a.replace("{map}", maps["GW170817"][0]).replace("{tmp}", str(tmp_path))
            for a in args]
    code, _, stderr = xmatch(capsys, *args, "--data", data.root)
    assert code == 2
    assert stderr.startswith(f"xmatch {args[0]}: error: ") and message in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_through_a_server_equals_in_process(capsys, tmp_path, maps, data):
    path, _ = maps["GW170817"]
    searches = [["skymap", path, "--catalog", "glade_gw170817", "--level", "1",
                 "--rank-by", "probdensity_vol", "--limit", "20"],
                ["skymap", path, "--catalog", "gw_sources", "--columns", "dist"],
                ["moc", MOCS[1], "--catalog", "sky"]]
    local = []
    for i, search in enumerate(searches):
        assert xmatch(capsys, *search, "--out", tmp_path / f"{i}.parquet",
                      "--data", data.root)[0] == 0
        local.append(pq.read_table(tmp_path / f"{i}.parquet"))
    with running_server(served_catalogs(data, load_defaults=False)) as address:
        for i, search in enumerate(searches):
            out = tmp_path / f"served{i}.parquet"
            code, stdout, _ = xmatch(capsys, *search, "--out", out, "--server", address)
            assert code == 0 and "row(s) inside" in stdout
            assert pq.read_table(out).to_pylist() == local[i].to_pylist()
        assert local[0]["xmatch_row"][0].as_py() == NGC_4993_ROW
        code, _, stderr = xmatch(capsys, "skymap", path, "--catalog", "sky", "--rank-by",
                                 "probdensity_vol", "--server", address)
        assert code == 2 and "no distance column" in stderr and "Traceback" not in stderr
        code, _, stderr = xmatch(capsys, "moc", MOCS[0], "--catalog", "nope", "--server",
                                 address)
        assert code == 2 and stderr.startswith("xmatch moc: error: NOT_FOUND")
        with Client(address) as client:  # the step `xmatch demo` ends with
            demo_skymap(client)
        first_row = capsys.readouterr().out.splitlines()[-1].split()
        assert first_row[:3] == [str(NGC_4993_ROW), "197.448776", "-23.383831"]
