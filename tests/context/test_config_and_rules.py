"""Context configuration and spec roles are checked key by key; the rules give one class
with its evidence, never confuse "no match" with "failed", and leave informational layers
out of the orphan decision."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from xmatch import CatalogSpec, InputError, SkyIndex, SpecError
from xmatch.context.config import parse_config, read_context_config
from xmatch.context.engine import ContextCatalog, ContextEngine
from xmatch.errors import CatalogNotFoundError
from xmatch.sky.regions import Moc
from xmatch.specs import parse_spec

SPEC = 'name = "x"\n[columns]\nra = "ra"\ndec = "dec"\n'


@pytest.mark.parametrize("context,message", [
    ('[context]\npurposes = ["stars"]\n', "context.purposes must be a list of"),
    ('[context]\npurposes = ["bright_stars"]\n', "bright_stars, which needs context.magnitudes"),
    ('[context]\ncolour = "x"\n', r"unknown key\(s\) in \[context\]: \['colour'\]"),
    ('[context.shape]\nsemi_major = "a"\nunit = "parsec"\n', "context.shape.unit must be one of"),
    ('[context.shape]\nsemi_major = "a"\naxis_ratio = "q"\nunit = "arcsec"\n',
     "an ellipse needs position_angle"),
    ('[context.shape]\nsemi_major = "a"\nsemi_minor = "b"\naxis_ratio = "q"\n'
     'position_angle = "p"\nunit = "arcsec"\n', "semi_minor or axis_ratio, not both"),
    ('[context.error_region]\nradius = "r"\nunit = "arcsec"\n', "confidence must be"),
    ('[context.error_region]\nradius = "r"\nsemi_major = "a"\nunit = "arcsec"\n'
     'confidence = 0.9\n', "semi_major \\(an ellipse\\) or radius \\(a circle\\), not both"),
    ('[context.distance]\nredshift = "z"\n', r"unknown key\(s\) in \[context.distance\]"),
    ('[context]\nmagnitudes = { G = 3 }\n', "context.magnitudes must map band names"),
])
def test_bad_context_roles_name_the_key(context, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(SPEC + context)


def test_roles_add_their_columns_to_what_a_load_reads():
    spec = parse_spec(SPEC + '[context]\npurposes = ["galaxies"]\n[context.shape]\n'
                      'semi_major = "d25"\naxes = "diameter"\nunit = "arcmin"\n'
                      'axis_ratio = "q"\nposition_angle = "pa"\n[context.distance]\n'
                      'spec_z = "z"\n')
    assert spec.source_columns() == ["ra", "dec", "z", "d25", "q", "pa"]
    assert spec.context_roles.shape.arcsec_per_unit == 30.0  # a diameter in arcmin
    assert CatalogSpec.from_dict(spec.to_dict()).context_roles == spec.context_roles


@pytest.mark.parametrize("text,message", [
    ("", "no \\[\\[layer\\]\\]"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = 1\n', "no \\[\\[rule\\]\\]"),
    ('[[layer]]\nkind = "star"\ncatalog = "c"\n', "kind must be one of"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\n', "radius_arcsec \\(the match radius\\) is "
                                                 "required"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = -1\n', "must be a number > 0"),
    ('[[layer]]\nkind = "bright_star"\ncatalog = "c"\nband = "G"\nmax_dlr = 3\n',
     r"unknown key\(s\) \['max_dlr'\]"),
    ('[[layer]]\nkind = "bright_star"\ncatalog = "c"\n', "band must name"),
    ('[[layer]]\nkind = "bright_star"\ncatalog = "c"\nband = "G"\nhalo = { slope = 1, '
     'width = 2 }\n', r"halo: unknown key\(s\) \['width'\]"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = 1\n[[layer]]\nkind = "agn"\n'
     'catalog = "d"\nradius_arcsec = 1\n', "layer names must differ"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = 1\n[[rule]]\nclass = "qso"\n'
     'layer = "host"\n', "layer 'host' is not one of the layers"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = 1\n[[rule]]\nclass = "orphan"\n'
     'layer = "agn"\n', "orphan and unclear are given by xmatch"),
    ('[[layer]]\nkind = "host_galaxy"\ncatalog = "c"\n[[rule]]\nclass = "sn"\n'
     'layer = "host_galaxy"\ntypes = ["Sc"]\n', "types select object types"),
    ('[[layer]]\nkind = "agn"\ncatalog = "c"\nradius_arcsec = 1\n[[rule]]\nclass = "qso"\n'
     'layer = "agn"\nmax_sep = 1\n', r"unknown key\(s\) \['max_sep'\]"),
    ("layer = [", "not valid TOML"),
])
def test_bad_configurations_name_the_key(text, message):
    with pytest.raises(InputError, match=message):
        parse_config(text, "my.toml")


def test_the_bundled_configuration_reads():
    config = read_context_config()
    assert [layer.kind for layer in config.layers] == [
        "bright_star", "bright_star", "variable_star", "agn", "error_region", "host_galaxy"]
    assert [rule.klass for rule in config.rules] == [
        "variable_star", "agn", "bright_star", "bright_star", "nuclear", "supernova"]


def point_catalog(name: str, purposes: list[str], ra, dec, **extra) -> ContextCatalog:
    spec = CatalogSpec(name=name, id="id", ra="ra", dec="dec",
                       context={"purposes": purposes, "object_type": "type"})
    table = pa.table({"id": [f"{name}-{i}" for i in range(len(ra))], "ra": ra, "dec": dec,
                      "type": ["M"] * len(ra), **extra})
    return ContextCatalog(spec, "id", None, lambda: SkyIndex.from_table(table))


CONFIG = """
[[layer]]
name = "var"
kind = "variable_star"
catalog = "vars"
radius_arcsec = 2.0
[[layer]]
name = "agn"
kind = "agn"
catalog = "agns"
radius_arcsec = 2.0
[[layer]]
name = "info"
kind = "agn"
catalog = "extra"
radius_arcsec = 5.0
[[rule]]
class = "variable_star"
layer = "var"
[[rule]]
class = "agn"
layer = "agn"
max_distance = 0.5
"""


def engine_with(catalogs: dict) -> ContextEngine:
    def lookup(name):
        if name not in catalogs:
            raise CatalogNotFoundError(f"no catalog {name!r} here")
        return catalogs[name]

    return ContextEngine(parse_config(CONFIG), lookup)


def test_rules_give_one_class_with_its_evidence():
    engine = engine_with({
        "vars": point_catalog("vars", ["variable_stars"], [10.0], [0.0]),
        "agns": point_catalog("agns", ["agn"], [10.0, 20.0, 30.0], [0.0, 0.0, 0.0]),
        "extra": point_catalog("extra", ["agn"], [40.0], [0.0])})
    ra = np.array([10.0, 20.0, 30.0 + 1.5 / 3600, 40.0, 50.0])
    table = engine.context(ra, np.zeros(5))
    assert table["class"].to_pylist() == ["variable_star", "agn", "unclear", "orphan",
                                          "orphan"]
    # The variable-star rule comes first; its evidence is the variable star.
    assert table["class_id"].to_pylist()[:2] == ["vars-0", "agns-1"]
    assert table["class_catalog"].to_pylist()[:2] == ["vars", "agns"]
    # An AGN at 0.75 of its radius: matched, but the rule wants 0.5: no rule holds.
    assert table["agn_state"][2].as_py() == "matched"
    assert table["agn_distance"][2].as_py() == pytest.approx(0.75, rel=1e-6)
    assert table["class_reason"][2].as_py() == "no rule holds; agn matched"
    # "info" is used by no rule: its match (row 3) never makes a position unclear.
    assert table["info_state"][3].as_py() == "matched"


def test_a_failed_layer_makes_the_class_unclear_never_orphan():
    engine = engine_with({"agns": point_catalog("agns", ["agn"], [20.0], [0.0]),
                          "extra": point_catalog("extra", ["agn"], [40.0], [0.0])})
    table = engine.context(np.array([20.0, 50.0]), np.zeros(2))
    assert table["var_state"].to_pylist() == ["failed", "failed"]
    assert table["var_count"].to_pylist() == [None, None]
    assert "no catalog 'vars' here" in table["var_failure"][0].as_py()
    # The first rule's layer failed: whatever the AGN says, the class cannot be known.
    assert table["class"].to_pylist() == ["unclear", "unclear"]
    assert table["class_reason"][0].as_py().startswith("var failed")


def test_outside_coverage_is_not_no_match():
    catalogs = {"vars": point_catalog("vars", ["variable_stars"], [10.0], [0.0]),
                "agns": point_catalog("agns", ["agn"], [10.0], [0.0]),
                "extra": point_catalog("extra", ["agn"], [10.0], [0.0])}
    north = Moc.of("0/0-3", name="coverage")  # the four northern base pixels
    catalogs["agns"] = ContextCatalog(catalogs["agns"].spec, "id", north,
                                      catalogs["agns"].load_index)
    table = engine_with(catalogs).context(np.array([100.0, 100.0]), np.array([60.0, -60.0]))
    assert table["agn_state"].to_pylist() == ["no_match", "outside_coverage"]
    assert table["class"].to_pylist() == ["orphan", "unclear"]


def test_a_layer_checks_its_catalog_declares_the_purpose():
    engine = engine_with({"vars": point_catalog("vars", ["agn"], [10.0], [0.0])})
    with pytest.raises(InputError, match="catalog vars is not declared for variable_stars"):
        engine.check()


def test_positions_are_checked():
    engine = engine_with({})
    with pytest.raises(InputError, match="ra must be finite"):
        engine.context(np.array([361.0]), np.array([0.0]))
    table = engine.context(np.empty(0), np.empty(0))
    assert table.num_rows == 0 and "class" in table.column_names
