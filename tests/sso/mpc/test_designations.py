"""Packed MPC designations and dates, unpacked (dates against astropy)."""

from __future__ import annotations

import pytest
from astropy.time import Time

from xmatch.sso.mpc.designations import unpack_designation, unpack_epoch


@pytest.mark.parametrize(("packed", "readable"), [
    ("00001", "(1)"), ("00433", "(433)"), ("A0001", "(100001)"), ("a0001", "(360001)"),
    ("z9999", "(619999)"), ("~0000", "(620000)"), ("~000a", "(620036)"),
    ("~zzzz", "(15396335)"),
    ("K13L24L", "2013 LL24"), ("J95X00A", "1995 XA"), ("J98SA8Q", "1998 SQ108"),
    ("K07Tf8A", "2007 TA418"), ("K08Aa0A", "2008 AA360"),
    ("_QC0000", "2026 CA620"), ("_QC0aEM", "2026 CZ6190"),
    ("PLS2040", "2040 P-L"), ("T1S3138", "3138 T-1"), ("T2S1010", "1010 T-2"),
    ("T3S4101", "4101 T-3"),
    ("CJ95O010", "C/1995 O1"), ("PJ96R020", "P/1996 R2"), ("PK13R03a", "P/2013 R3-A"),
    ("CK14UR1N", "C/2014 UN271"), ("AK18W030", "A/2018 W3"), ("CJ42E00A", "C/1942 EA"),
    ("J94P01b", "1994 P1-B"), ("K88AA30", "2088 A103"),
    ("0001P", "1P"), ("0003Da", "3D-A"), ("0073Pbt", "73P-BT"), ("0073P     bt", "73P-BT"),
    ("0001I", "1I"), ("0260PK12K010", "260P"),
])
def test_unpack_designation(packed, readable):
    assert unpack_designation(packed) == readable


@pytest.mark.parametrize("packed", ["", "1", "K13L24", "Q13L24L", "K13I24L", "0001Z",
                                    "~00000", "PLS204", "CJ95O01"])
def test_unpack_designation_rejects(packed):
    with pytest.raises(ValueError, match="not a packed MPC designation"):
        unpack_designation(packed)


@pytest.mark.parametrize(("packed", "iso"), [
    ("K25BL", "2025-11-21"), ("K205V", "2020-05-31"), ("K1972", "2019-07-02"),
    ("J9611", "1996-01-01"), ("I99CC", "1899-12-12"), ("K2421", "2024-02-01"),
    ("K242T", "2024-02-29"),
])
def test_unpack_epoch_against_astropy(packed, iso):
    assert unpack_epoch(packed) == Time(iso, scale="tt").mjd


@pytest.mark.parametrize("packed", ["K25BW", "K25DZ", "K252U", "K232T", "K25B", "L25BL",
                                    "K25B0"])
def test_unpack_epoch_rejects(packed):
    with pytest.raises(ValueError):
        unpack_epoch(packed)
