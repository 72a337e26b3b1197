"""Catalog specs: bundled ones parse, bad ones are rejected with the offending key."""

import pytest

from xmatch import SpecError, bundled_spec, bundled_spec_names, read_spec
from xmatch.specs import parse_spec


def test_bundled_specs_parse_and_declare_what_the_issue_asks():
    assert {"gaia_dr3", "hipparcos2", "ps1_dr2", "gcvs"} <= set(bundled_spec_names())
    gaia = bundled_spec("gaia_dr3")
    assert (gaia.id, gaia.ra, gaia.dec, gaia.epoch_jyear) == ("source_id", "ra", "dec", 2016.0)
    assert (gaia.pmra, gaia.pmdec, gaia.parallax) == ("pmra", "pmdec", "parallax")
    hip = bundled_spec("hipparcos2")
    assert hip.epoch_jyear == 1991.25 and hip.pmra == "pmra"
    ps1 = bundled_spec("ps1_dr2")
    assert (ps1.id, ps1.ra, ps1.dec) == ("objID", "raMean", "decMean")
    assert bundled_spec("gcvs").key == ("VarType",)


MINIMAL = 'name = "mine"\n[columns]\nra = "RA"\ndec = "DEC"\n'


def test_minimal_spec_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    spec = read_spec(path)
    assert (spec.name, spec.ra, spec.dec, spec.id) == ("mine", "RA", "DEC", None)


@pytest.mark.parametrize("text,message", [
    (MINIMAL + "colour = 1\n", r"unknown key\(s\) in \[columns\]: \['colour'\]"),
    (MINIMAL.replace('dec = "DEC"\n', ""), r"missing required key 'dec' in \[columns\]"),
    (MINIMAL + 'pmra = "PMRA"\n', "pmra and columns.pmdec go together"),
    (MINIMAL + "[match]\ndefault_radius_arcsec = -1\n", "default_radius_arcsec must be > 0"),
    (MINIMAL.replace('"mine"', '"9 lives"'), "must start with a letter"),
    ("name = [", "not valid TOML"),
    ('nam = "x"\n', r"unknown top-level key\(s\) \['nam'\]"),
])
def test_bad_specs_name_the_problem(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text, "mine.toml")


def test_unknown_bundled_spec_lists_the_known_ones():
    with pytest.raises(SpecError, match="no bundled catalog spec named .nope.; bundled: "
                                        "fermi_4fgl, fermi_4lac, gaia_dr3"):
        bundled_spec("nope")
