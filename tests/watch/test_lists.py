"""Watchlists: the entries each position falls in (each entry with its own radius) against
astropy's ``search_around_sky`` and ``separation``, at the poles, across RA 0/360, for radii
of 0.1 arcsec to 1 deg; tables read strictly, every refusal one line naming file, row and
column; an empty list; a list of a million entries."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord

from xmatch.errors import InputError
from xmatch.index.region_index import QueryPositions
from xmatch.watch import MAX_WATCH_RADIUS_ARCSEC, Watchlist, check_watch_name

#: Pairs closer than this to their entry's boundary (arcsec) are left out of comparisons:
#: astropy and the kernel may round them to either side.
BOUNDARY_ARCSEC = 1e-6

#: (ra, dec, radius"): the poles, RA 0/360, the widest and the narrowest radii.
AWKWARD = [
    (0.0, 90.0, 1800.0),          # on the north pole, half a degree
    (123.0, -90.0, 2.0),          # on the south pole
    (17.0, 89.95, 3600.0),        # a degree reaching over the north pole
    (359.9999, 0.0, 1800.0),      # across RA 0/360
    (360.0, -30.0, 5.0),          # RA 360 is RA 0
    (0.0, 45.0, 0.1),             # the narrowest
    (0.0, 45.0, 0.1),             # a duplicate entry
    (180.0, -89.999, 0.1),        # narrow, next to the south pole
    (0.00001, 10.0, 1800.0),      # across RA 0/360 from the other side
]


def random_entries(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries anywhere on the sky with radii log-uniform in 0.1 to 1800 arcsec, after the
    awkward ones."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    radius = np.exp(rng.uniform(np.log(0.1), np.log(1800), n))
    awkward = np.array(AWKWARD)
    return (np.r_[awkward[:, 0], ra], np.r_[awkward[:, 1], dec], np.r_[awkward[:, 2], radius])


def positions_near(ra, dec, radius, per_entry: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions around each entry, out to 1.5 radii in every direction, the entries'
    centres themselves, uniform ones anywhere, the poles and RA 0/360."""
    rng = np.random.default_rng(seed)
    centres = SkyCoord(np.repeat(ra, per_entry) * u.deg, np.repeat(dec, per_entry) * u.deg)
    spots = centres.directional_offset_by(
        rng.uniform(0, 360, len(centres)) * u.deg,
        rng.uniform(0, 1.5, len(centres)) * np.repeat(radius, per_entry) * u.arcsec)
    n = len(ra) * per_entry
    return (np.r_[spots.ra.deg, ra % 360, rng.uniform(0, 360, n), 0.0, 359.99999, 0.0, 45.0],
            np.r_[spots.dec.deg, dec, np.degrees(np.arcsin(rng.uniform(-1, 1, n))), 90.0,
                  0.0, -90.0, -90.0])


def oracle_pairs(ra, dec, radius, q_ra, q_dec) -> dict[tuple[int, int], float]:
    """{(query, entry): separation"} within each entry's own radius, by astropy: pairs
    within the widest radius, kept where within their entry's."""
    entries = SkyCoord(ra * u.deg, dec * u.deg)
    queries = SkyCoord(q_ra * u.deg, q_dec * u.deg)
    query, entry, separation, _ = entries.search_around_sky(
        queries, (radius.max() + 1) * u.arcsec)
    separation = separation.to_value(u.arcsec)
    keep = separation <= radius[entry]
    return {(int(q), int(e)): float(s)
            for q, e, s in zip(query[keep], entry[keep], separation[keep], strict=True)}


def pairs_of(table: pa.Table) -> dict[tuple[int, int], float]:
    return {(q, e): s for q, e, s in zip(table["query_index"].to_pylist(),
                                         table["entry"].to_pylist(),
                                         table["separation_arcsec"].to_pylist(), strict=True)}


def assert_same_pairs(found: dict, expected: dict, radius: np.ndarray) -> None:
    def clear(pairs):
        return {k: v for k, v in pairs.items()
                if abs(v - radius[k[1]]) > BOUNDARY_ARCSEC}

    found, expected = clear(found), clear(expected)
    assert found.keys() == expected.keys()
    keys = sorted(found)
    np.testing.assert_allclose([found[k] for k in keys], [expected[k] for k in keys],
                               rtol=1e-9, atol=1e-6)


def assert_grouped_closest_first(table: pa.Table) -> None:
    query = table["query_index"].to_numpy()
    separation = table["separation_arcsec"].to_numpy()
    entry = table["entry"].to_numpy()
    order = np.lexsort((entry, separation, query))
    assert np.array_equal(order, np.arange(len(order)))


def test_matches_equal_astropy_with_per_entry_radii():
    ra, dec, radius = random_entries(300, seed=3)
    names = pa.array([f"target {i}" if i % 3 else None for i in range(len(ra))])
    watchlist = Watchlist("targets", ra, dec, radius, names, "random")
    q_ra, q_dec = positions_near(ra, dec, radius, per_entry=8, seed=4)
    found = watchlist.matches(q_ra, q_dec)
    assert found.schema.names == ["query_index", "entry", "separation_arcsec"]
    assert [f.type for f in found.schema] == [pa.int64(), pa.int64(), pa.float64()]
    expected = oracle_pairs(ra, dec, radius, q_ra, q_dec)
    assert len(expected) > 1500
    assert_same_pairs(pairs_of(found), expected, radius)
    assert_grouped_closest_first(found)
    # The awkward entries are found: each centre matches its own entry, at 0 arcsec.
    pairs = pairs_of(found)
    start = 8 * len(ra)  # the centres follow the 8 positions around each entry
    for entry in range(len(AWKWARD)):
        assert pairs[(start + entry, entry)] == pytest.approx(0.0, abs=1e-6)
    # The same answer from positions worked out once (as the store shares them).
    assert found.equals(watchlist.matches(QueryPositions.of(q_ra, q_dec)))


def test_radius_is_each_entrys_own():
    """Two entries at one place, 1 and 10 arcsec: a position 5 arcsec away matches the
    wide one only; a third, 12 arcsec away but half a degree wide, comes after it: the
    order is by separation, not by how deep inside."""
    watchlist = Watchlist("pair", [10.0, 10.0, 10.0], [20.0, 20.0, 20.0 - 7 / 3600],
                          [1.0, 10.0, 1800.0])
    here = SkyCoord(10 * u.deg, 20 * u.deg).directional_offset_by(0 * u.deg, 5 * u.arcsec)
    found = watchlist.matches([here.ra.deg], [here.dec.deg])
    assert found["entry"].to_pylist() == [1, 2]
    np.testing.assert_allclose(found["separation_arcsec"].to_pylist(), [5.0, 12.0],
                               rtol=1e-6)


def test_ra_wraps_and_poles():
    watchlist = Watchlist("edges", [359.9999, 0.0, 200.0], [0.0, 90.0, -90.0],
                          [1.0, 10.0, 0.1])
    found = watchlist.matches([0.0001, 360.0, 0.0, 300.0, 10.0],
                              [0.0, 0.0, 89.999, -90.0, -89.99999])
    pairs = pairs_of(found)
    assert set(pairs) == {(0, 0), (1, 0), (2, 1), (3, 2), (4, 2)}
    assert pairs[(0, 0)] == pytest.approx(0.72, rel=1e-6)
    assert pairs[(2, 1)] == pytest.approx(3.6, rel=1e-6)


def test_empty_list_and_empty_positions():
    empty = Watchlist.from_table("empty", pa.table({"ra": pa.array([], pa.float64()),
                                                    "dec": pa.array([], pa.float64())}),
                                 "empty.csv", radius_arcsec=5.0)
    assert len(empty) == 0 and empty.entry_names is None
    found = empty.matches([1.0, 2.0], [3.0, 4.0])
    assert found.num_rows == 0 and found.schema.names == ["query_index", "entry",
                                                         "separation_arcsec"]
    assert empty.entries_table().num_rows == 0
    watchlist = Watchlist("one", [1.0], [2.0], [3.0])
    assert watchlist.matches(np.empty(0), np.empty(0)).num_rows == 0


def test_entries_table_round_trip():
    ra, dec, radius = random_entries(20, seed=8)
    names = pa.array([None, "b", *[f"n{i}" for i in range(len(ra) - 2)]])
    watchlist = Watchlist("round", ra, dec, radius, names, "somewhere.csv")
    table = watchlist.entries_table()
    assert table.schema.names == ["entry", "ra_deg", "dec_deg", "radius_arcsec", "name"]
    assert table.schema.field("radius_arcsec").metadata == {b"unit": b"arcsec"}
    again = Watchlist.from_table("round", table, "again", ra_column="ra_deg",
                                 dec_column="dec_deg", name_column="name")
    for field in ("ra_deg", "dec_deg", "radius_arcsec"):
        assert np.array_equal(getattr(again, field), getattr(watchlist, field))
    assert again.entry_names.equals(names)
    assert table["entry"].to_pylist() == list(range(len(ra)))


# ------------------------------------------------------------------------- reading tables


def targets_csv(tmp_path, radius_text: str = "2.0", row: int = 17):
    """A CSV of 20 targets whose ``row``-th data row has the radius ``radius_text``."""
    lines = ["name,ra,dec,radius_arcsec"]
    for i in range(1, 21):
        lines.append(f"t{i},{10 + i * 0.1},{-5 + i * 0.1},"
                     f"{radius_text if i == row else 1.5}")
    path = tmp_path / "targets.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_a_users_csv(tmp_path):
    path = targets_csv(tmp_path)
    watchlist = Watchlist.read("targets", path, name_column="name")
    assert len(watchlist) == 20 and watchlist.source == str(path)
    assert watchlist.radius_arcsec[16] == 2.0 and watchlist.radius_arcsec[0] == 1.5
    assert watchlist.entry_names[0].as_py() == "t1"
    # Sexagesimal positions, a radius for every entry, columns named.
    path = tmp_path / "hms.csv"
    path.write_text("id,RAJ,DEJ\n1,12:30:00,+12:30:00\n2,00:00:00.1,-89:59:59\n")
    watchlist = Watchlist.read("hms", path, ra_column="RAJ", dec_column="DEJ",
                               radius_arcsec=3 * u.arcsec, name_column="id")
    assert watchlist.ra_deg[0] == pytest.approx(187.5)
    assert watchlist.entry_names.to_pylist() == ["1", "2"]
    assert watchlist.radius_arcsec.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("radius_text, message", [
    ("-2.0", "row 17, column radius_arcsec: -2.0 is not allowed; a radius is > 0 and <= 3600 "
             "arcsec"),
    ("0", "row 17, column radius_arcsec: 0.0 is not allowed"),
    ("3600.5", "row 17, column radius_arcsec: 3600.5 is not allowed"),
    ("", "row 17, column radius_arcsec: radius is missing (empty, null or NaN)"),
    ("nan", "row 17, column radius_arcsec: radius is missing"),
    ("abc", "row 17, column radius_arcsec: value 'abc' is not a number"),
])
def test_bad_radii_are_refused_naming_file_row_and_column(tmp_path, radius_text, message):
    path = targets_csv(tmp_path, radius_text)
    with pytest.raises(InputError) as caught:
        Watchlist.read("targets", path)
    text = str(caught.value)
    assert text.startswith(f"watchlist {path} ")
    assert message in text and "\n" not in text


def test_the_example_message(tmp_path):
    path = targets_csv(tmp_path, "-2.0")
    with pytest.raises(InputError) as caught:
        Watchlist.read("targets", path)
    assert str(caught.value) == (f"watchlist {path} row 17, column radius_arcsec: -2.0 is not "
                                 "allowed; a radius is > 0 and <= 3600 arcsec")


def test_bad_positions_and_columns_are_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ra,dec,radius_arcsec\n10,20,1\n400,20,1\n")
    with pytest.raises(InputError, match=rf"^watchlist {path} row 2, column ra: ra = 400"):
        Watchlist.read("bad", path)
    table = pa.table({"ra": [1.0], "dec": [2.0], "r": [3.0], "n": [1.5]})
    cases = [
        ({"radius_column": "nope"}, "column nope: required column 'nope' is missing; columns "
                                    "present: ra, dec, r, n (given with radius_column)"),
        ({"radius_column": "r", "name_column": "x"}, "(given with name_column)"),
        ({"radius_column": "r", "ra_column": "alpha"}, "required column 'alpha' is missing"),
        ({"radius_column": "r", "radius_arcsec": 2.0}, "give radius_column or radius_arcsec, "
                                                       "not both"),
        ({}, "no radius; give radius_column (a column of radii in arcsec) or radius_arcsec"),
        ({"radius_arcsec": -1.0}, "radius_arcsec = -1.0 is not allowed; a radius is > 0"),
        ({"radius_arcsec": MAX_WATCH_RADIUS_ARCSEC * 1.01}, "is not allowed"),
        ({"radius_arcsec": 1 * u.kg}, "is not allowed"),
        ({"radius_arcsec": True}, "radius_arcsec = True is not allowed"),
        ({"radius_arcsec": "5"}, "radius_arcsec = '5' is not allowed"),  # text needs a unit
        ({"radius_column": "r", "name_column": "n"}, "column n holds double values; entry "
                                                     "names are text (or integers)"),
        ({"radius_column": "n", "name_column": "r"}, "names are text"),
    ]
    for options, message in cases:
        with pytest.raises(InputError) as caught:
            Watchlist.from_table("t", table, "t.parquet", **options)
        assert message in str(caught.value), options
        assert str(caught.value).startswith("watchlist t.parquet"), options


def test_radius_columns_in_any_angle_unit_and_type():
    unit = pa.field("r", pa.float64(), metadata={b"unit": b"arcmin"})
    table = pa.table([pa.array([10.0, 20.0]), pa.array([0.0, 1.0]), pa.array([1.0, 0.5])],
                     schema=pa.schema([("ra", pa.float64()), ("dec", pa.float64()), unit]))
    assert Watchlist.from_table("u", table, "u.fits", radius_column="r").radius_arcsec.tolist(
    ) == [60.0, 30.0]
    metre = table.schema.set(2, pa.field("r", pa.float64(), metadata={b"unit": b"m"}))
    with pytest.raises(InputError, match="column r: has unit 'm', not an angle"):
        Watchlist.from_table("u", table.cast(metre), "u.fits", radius_column="r")
    too_wide = pa.table([pa.array([10.0]), pa.array([0.0]), pa.array([61.0])],
                        schema=pa.schema([("ra", pa.float64()), ("dec", pa.float64()), unit]))
    with pytest.raises(InputError, match="row 1, column r: 61.0 arcmin is not allowed"):
        Watchlist.from_table("u", too_wide, "u.fits", radius_column="r")
    # Integers, numeric text, a null.
    ints = pa.table({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "radius_arcsec": [1, 2]})
    assert Watchlist.from_table("i", ints, "i").radius_arcsec.tolist() == [1.0, 2.0]
    text = pa.table({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "radius_arcsec": [" 1.5", "2e1"]})
    assert Watchlist.from_table("s", text, "s").radius_arcsec.tolist() == [1.5, 20.0]
    text = pa.table({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "radius_arcsec": ["1_0", ""]})
    with pytest.raises(InputError, match="row 2, column radius_arcsec: radius is missing"):
        Watchlist.from_table("s", text, "s")
    nulls = pa.table({"ra": [1.0, 2.0], "dec": [0.0, 0.0], "radius_arcsec": [1.0, None]})
    with pytest.raises(InputError, match="row 2, column radius_arcsec: radius is missing"):
        Watchlist.from_table("n", nulls, "n")
    flags = pa.table({"ra": [1.0], "dec": [0.0], "radius_arcsec": [True]})
    with pytest.raises(InputError, match="holds bool values, not numbers of arcsec"):
        Watchlist.from_table("b", flags, "b")


def test_entry_names_may_be_missing_or_integers():
    table = pa.table({"ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0],
                      "radius_arcsec": [1.0, 1.0, 1.0], "name": ["a", None, "c"],
                      "hip": [11, 22, None]})
    named = Watchlist.from_table("n", table, "n", name_column="name")
    assert named.entry_names.to_pylist() == ["a", None, "c"]
    numbered = Watchlist.from_table("h", table, "h", name_column="hip")
    assert numbered.entry_names.to_pylist() == ["11", "22", None]
    assert Watchlist.from_table("x", table, "x").entry_names is None  # never guessed


@pytest.mark.parametrize("name", ["a", "gw.S250101a", "My_list.v2-final", "0" * 128])
def test_good_watch_names(name):
    assert check_watch_name(name) == name


@pytest.mark.parametrize("name", ["", "has space", "a/b", "gw:S1", "-lead", ".hidden", "0" * 129,
                                  "tab\t", "new\n", "é", 12, None])
def test_bad_watch_names_are_refused(name):
    with pytest.raises(InputError, match="watch name = .* is not allowed; watch name must be "
                                         "1 to 128 letters"):
        check_watch_name(name)
    with pytest.raises(InputError, match="watch name"):
        Watchlist(name, [1.0], [2.0], [3.0])


def test_the_constructor_checks_its_arrays():
    with pytest.raises(InputError, match="ra_deg has 2, dec_deg has 1"):
        Watchlist("l", [1.0, 2.0], [3.0], [1.0, 1.0])
    with pytest.raises(InputError, match="watchlist l: dec = 91.0"):
        Watchlist("l", [1.0], [91.0], [1.0])
    with pytest.raises(InputError, match=r"radius_arcsec = nan \(at position 1\)"):
        Watchlist("l", [1.0, 2.0], [3.0, 4.0], [1.0, np.nan])
    with pytest.raises(InputError, match="entry_names has 1"):
        Watchlist("l", [1.0, 2.0], [3.0, 4.0], [1.0, 1.0], pa.array(["a"]))
    ra = np.array([1.0, 2.0])
    watchlist = Watchlist("l", ra, [3.0, 4.0], [1.0, 1.0])
    ra[0] = 50.0  # the list keeps its own copy, read-only
    assert watchlist.ra_deg[0] == 1.0 and not watchlist.ra_deg.flags.writeable


@pytest.mark.slow
def test_a_million_entries():
    """A list of a million entries of 2 arcsec, read and searched: every entry's centre
    finds it, at 0 arcsec (the pairs themselves are checked against astropy above)."""
    rng = np.random.default_rng(12)
    n = 1_000_000
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    table = pa.table({"ra": ra, "dec": dec, "radius_arcsec": np.full(n, 2.0),
                      "id": np.arange(n)})
    watchlist = Watchlist.from_table("big", table, "big.parquet", name_column="id")
    assert len(watchlist) == n and watchlist.entry_names[n - 1].as_py() == str(n - 1)
    picked = rng.choice(n, 5000, replace=False)
    found = watchlist.matches(np.r_[ra[picked], 0.0, 180.0], np.r_[dec[picked], 90.0, -90.0])
    pairs = pairs_of(found)
    assert all(pairs[(i, int(e))] < 1e-6 for i, e in enumerate(picked))
    assert_grouped_closest_first(found)
    assert found.num_rows < 5100  # a 2-arcsec neighbour is rare at this density
