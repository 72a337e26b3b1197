"""Notices of other observatories that xmatch reads: IGWN gravitational-wave alerts
(:mod:`xmatch.notices.igwn`)."""

from __future__ import annotations

from xmatch.notices.igwn import Notice, build_notice, notice_json, read_notice

__all__ = ["Notice", "build_notice", "notice_json", "read_notice"]
