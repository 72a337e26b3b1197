"""Alert packets: ZTF and Rubin/LSST Avro in, annotated alerts out."""

from xmatch.alerts.avro import PacketError, Schema, Schemas
from xmatch.alerts.fields import ALERT_SCHEMA, decode, layout_of
from xmatch.alerts.sources import Packet, read_packets

__all__ = ["ALERT_SCHEMA", "Packet", "PacketError", "Schema", "Schemas", "decode",
           "layout_of", "read_packets"]
