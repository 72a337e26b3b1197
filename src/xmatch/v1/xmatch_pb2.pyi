from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_MODE_UNSPECIFIED: _ClassVar[MatchMode]
    MATCH_MODE_NEAREST: _ClassVar[MatchMode]
    MATCH_MODE_K_NEAREST: _ClassVar[MatchMode]
    MATCH_MODE_ALL: _ClassVar[MatchMode]
MATCH_MODE_UNSPECIFIED: MatchMode
MATCH_MODE_NEAREST: MatchMode
MATCH_MODE_K_NEAREST: MatchMode
MATCH_MODE_ALL: MatchMode

class ListCatalogsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCatalogsResponse(_message.Message):
    __slots__ = ("catalogs",)
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedCompositeFieldContainer[CatalogSummary]
    def __init__(self, catalogs: _Optional[_Iterable[_Union[CatalogSummary, _Mapping]]] = ...) -> None: ...

class CatalogSummary(_message.Message):
    __slots__ = ("name", "title", "rows", "epoch_jyear", "default_radius_arcsec", "proper_motions", "synthetic")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_JYEAR_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    PROPER_MOTIONS_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    rows: int
    epoch_jyear: float
    default_radius_arcsec: float
    proper_motions: bool
    synthetic: bool
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., rows: _Optional[int] = ..., epoch_jyear: _Optional[float] = ..., default_radius_arcsec: _Optional[float] = ..., proper_motions: _Optional[bool] = ..., synthetic: _Optional[bool] = ...) -> None: ...

class DescribeCatalogRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CatalogDescription(_message.Message):
    __slots__ = ("summary", "arrow_schema", "id_column", "ra_column", "dec_column", "key_columns", "partitions", "coverage_moc", "provenance_json", "distance_column")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ARROW_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    RA_COLUMN_FIELD_NUMBER: _ClassVar[int]
    DEC_COLUMN_FIELD_NUMBER: _ClassVar[int]
    KEY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_MOC_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_JSON_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_COLUMN_FIELD_NUMBER: _ClassVar[int]
    summary: CatalogSummary
    arrow_schema: bytes
    id_column: str
    ra_column: str
    dec_column: str
    key_columns: _containers.RepeatedScalarFieldContainer[str]
    partitions: _containers.RepeatedCompositeFieldContainer[Partition]
    coverage_moc: str
    provenance_json: str
    distance_column: str
    def __init__(self, summary: _Optional[_Union[CatalogSummary, _Mapping]] = ..., arrow_schema: _Optional[bytes] = ..., id_column: _Optional[str] = ..., ra_column: _Optional[str] = ..., dec_column: _Optional[str] = ..., key_columns: _Optional[_Iterable[str]] = ..., partitions: _Optional[_Iterable[_Union[Partition, _Mapping]]] = ..., coverage_moc: _Optional[str] = ..., provenance_json: _Optional[str] = ..., distance_column: _Optional[str] = ...) -> None: ...

class Partition(_message.Message):
    __slots__ = ("order", "pixel", "rows")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    order: int
    pixel: int
    rows: int
    def __init__(self, order: _Optional[int] = ..., pixel: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

class CoverageRequest(_message.Message):
    __slots__ = ("catalog", "order", "slice")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    order: int
    slice: str
    def __init__(self, catalog: _Optional[str] = ..., order: _Optional[int] = ..., slice: _Optional[str] = ...) -> None: ...

class CoverageResponse(_message.Message):
    __slots__ = ("ranges29", "order", "rows_counted")
    RANGES29_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ROWS_COUNTED_FIELD_NUMBER: _ClassVar[int]
    ranges29: _containers.RepeatedScalarFieldContainer[int]
    order: int
    rows_counted: int
    def __init__(self, ranges29: _Optional[_Iterable[int]] = ..., order: _Optional[int] = ..., rows_counted: _Optional[int] = ...) -> None: ...

class ConeRequest(_message.Message):
    __slots__ = ("catalog", "ra_deg", "dec_deg", "radius_arcsec", "columns", "limit", "epoch_jyear", "slice")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_JYEAR_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    ra_deg: float
    dec_deg: float
    radius_arcsec: float
    columns: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    epoch_jyear: float
    slice: str
    def __init__(self, catalog: _Optional[str] = ..., ra_deg: _Optional[float] = ..., dec_deg: _Optional[float] = ..., radius_arcsec: _Optional[float] = ..., columns: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., epoch_jyear: _Optional[float] = ..., slice: _Optional[str] = ...) -> None: ...

class SsoConeRequest(_message.Message):
    __slots__ = ("catalog", "ra_deg", "dec_deg", "radius_arcsec", "mjd", "time_scale", "observatory", "limit", "slice")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    MJD_FIELD_NUMBER: _ClassVar[int]
    TIME_SCALE_FIELD_NUMBER: _ClassVar[int]
    OBSERVATORY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    ra_deg: float
    dec_deg: float
    radius_arcsec: float
    mjd: float
    time_scale: str
    observatory: str
    limit: int
    slice: str
    def __init__(self, catalog: _Optional[str] = ..., ra_deg: _Optional[float] = ..., dec_deg: _Optional[float] = ..., radius_arcsec: _Optional[float] = ..., mjd: _Optional[float] = ..., time_scale: _Optional[str] = ..., observatory: _Optional[str] = ..., limit: _Optional[int] = ..., slice: _Optional[str] = ...) -> None: ...

class RowsResponse(_message.Message):
    __slots__ = ("arrow_ipc", "rows", "continuation_token", "rows_found")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FOUND_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    rows: int
    continuation_token: str
    rows_found: int
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., rows: _Optional[int] = ..., continuation_token: _Optional[str] = ..., rows_found: _Optional[int] = ...) -> None: ...

class RegionSearchRequest(_message.Message):
    __slots__ = ("catalog", "ranges29", "columns", "limit", "batch_rows", "continuation_token", "slice", "skymap", "polygon", "clip29", "ellipse")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    RANGES29_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    SKYMAP_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    CLIP29_FIELD_NUMBER: _ClassVar[int]
    ELLIPSE_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    ranges29: _containers.RepeatedScalarFieldContainer[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    batch_rows: int
    continuation_token: str
    slice: str
    skymap: SkyMapRegion
    polygon: PolygonRegion
    clip29: _containers.RepeatedScalarFieldContainer[int]
    ellipse: EllipseRegion
    def __init__(self, catalog: _Optional[str] = ..., ranges29: _Optional[_Iterable[int]] = ..., columns: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., batch_rows: _Optional[int] = ..., continuation_token: _Optional[str] = ..., slice: _Optional[str] = ..., skymap: _Optional[_Union[SkyMapRegion, _Mapping]] = ..., polygon: _Optional[_Union[PolygonRegion, _Mapping]] = ..., clip29: _Optional[_Iterable[int]] = ..., ellipse: _Optional[_Union[EllipseRegion, _Mapping]] = ...) -> None: ...

class EllipseRegion(_message.Message):
    __slots__ = ("ra_deg", "dec_deg", "semi_major_arcsec", "semi_minor_arcsec", "pa_deg")
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    SEMI_MAJOR_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    SEMI_MINOR_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    PA_DEG_FIELD_NUMBER: _ClassVar[int]
    ra_deg: float
    dec_deg: float
    semi_major_arcsec: float
    semi_minor_arcsec: float
    pa_deg: float
    def __init__(self, ra_deg: _Optional[float] = ..., dec_deg: _Optional[float] = ..., semi_major_arcsec: _Optional[float] = ..., semi_minor_arcsec: _Optional[float] = ..., pa_deg: _Optional[float] = ...) -> None: ...

class PolygonRegion(_message.Message):
    __slots__ = ("ra_deg", "dec_deg")
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    ra_deg: _containers.RepeatedScalarFieldContainer[float]
    dec_deg: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, ra_deg: _Optional[_Iterable[float]] = ..., dec_deg: _Optional[_Iterable[float]] = ...) -> None: ...

class SkyMapRegion(_message.Message):
    __slots__ = ("fits", "credible_level", "rank_by")
    FITS_FIELD_NUMBER: _ClassVar[int]
    CREDIBLE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RANK_BY_FIELD_NUMBER: _ClassVar[int]
    fits: bytes
    credible_level: float
    rank_by: str
    def __init__(self, fits: _Optional[bytes] = ..., credible_level: _Optional[float] = ..., rank_by: _Optional[str] = ...) -> None: ...

class CrossmatchOptions(_message.Message):
    __slots__ = ("catalog", "radius_arcsec", "mode", "k", "columns", "epoch_jyear", "slice", "time_scale")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_JYEAR_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    TIME_SCALE_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    radius_arcsec: float
    mode: MatchMode
    k: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    epoch_jyear: float
    slice: str
    time_scale: str
    def __init__(self, catalog: _Optional[str] = ..., radius_arcsec: _Optional[float] = ..., mode: _Optional[_Union[MatchMode, str]] = ..., k: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ..., epoch_jyear: _Optional[float] = ..., slice: _Optional[str] = ..., time_scale: _Optional[str] = ...) -> None: ...

class PositionBatch(_message.Message):
    __slots__ = ("batch_id", "ra_deg", "dec_deg", "radius_arcsec", "epoch_jyear", "mjd")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    EPOCH_JYEAR_FIELD_NUMBER: _ClassVar[int]
    MJD_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    ra_deg: _containers.RepeatedScalarFieldContainer[float]
    dec_deg: _containers.RepeatedScalarFieldContainer[float]
    radius_arcsec: _containers.RepeatedScalarFieldContainer[float]
    epoch_jyear: _containers.RepeatedScalarFieldContainer[float]
    mjd: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, batch_id: _Optional[int] = ..., ra_deg: _Optional[_Iterable[float]] = ..., dec_deg: _Optional[_Iterable[float]] = ..., radius_arcsec: _Optional[_Iterable[float]] = ..., epoch_jyear: _Optional[_Iterable[float]] = ..., mjd: _Optional[_Iterable[float]] = ...) -> None: ...

class CrossmatchRequest(_message.Message):
    __slots__ = ("options", "batch")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    options: CrossmatchOptions
    batch: PositionBatch
    def __init__(self, options: _Optional[_Union[CrossmatchOptions, _Mapping]] = ..., batch: _Optional[_Union[PositionBatch, _Mapping]] = ...) -> None: ...

class CrossmatchResponse(_message.Message):
    __slots__ = ("batch_id", "arrow_ipc", "queries", "matches")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    arrow_ipc: bytes
    queries: int
    matches: int
    def __init__(self, batch_id: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ..., queries: _Optional[int] = ..., matches: _Optional[int] = ...) -> None: ...

class AnnotateOptions(_message.Message):
    __slots__ = ("catalogs", "radius_arcsec", "all_matches", "avro_schemas", "observatory", "context", "history", "watches")
    class RadiusArcsecEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class AvroSchemasEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    ALL_MATCHES_FIELD_NUMBER: _ClassVar[int]
    AVRO_SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATORY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    WATCHES_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedScalarFieldContainer[str]
    radius_arcsec: _containers.ScalarMap[str, float]
    all_matches: bool
    avro_schemas: _containers.ScalarMap[int, str]
    observatory: str
    context: bool
    history: bool
    watches: bool
    def __init__(self, catalogs: _Optional[_Iterable[str]] = ..., radius_arcsec: _Optional[_Mapping[str, float]] = ..., all_matches: _Optional[bool] = ..., avro_schemas: _Optional[_Mapping[int, str]] = ..., observatory: _Optional[str] = ..., context: _Optional[bool] = ..., history: _Optional[bool] = ..., watches: _Optional[bool] = ...) -> None: ...

class ObjectHistoryRequest(_message.Message):
    __slots__ = ("object_id",)
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: int
    def __init__(self, object_id: _Optional[int] = ...) -> None: ...

class ObjectHistoryResponse(_message.Message):
    __slots__ = ("object_ipc", "detections_ipc")
    OBJECT_IPC_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_IPC_FIELD_NUMBER: _ClassVar[int]
    object_ipc: bytes
    detections_ipc: bytes
    def __init__(self, object_ipc: _Optional[bytes] = ..., detections_ipc: _Optional[bytes] = ...) -> None: ...

class AddWatchRequest(_message.Message):
    __slots__ = ("name", "replace", "list_ipc", "moc", "moc_fits", "skymap_fits", "level", "radius_column", "radius_arcsec", "name_column")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    LIST_IPC_FIELD_NUMBER: _ClassVar[int]
    MOC_FIELD_NUMBER: _ClassVar[int]
    MOC_FITS_FIELD_NUMBER: _ClassVar[int]
    SKYMAP_FITS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    RADIUS_COLUMN_FIELD_NUMBER: _ClassVar[int]
    RADIUS_ARCSEC_FIELD_NUMBER: _ClassVar[int]
    NAME_COLUMN_FIELD_NUMBER: _ClassVar[int]
    name: str
    replace: bool
    list_ipc: bytes
    moc: str
    moc_fits: bytes
    skymap_fits: bytes
    level: float
    radius_column: str
    radius_arcsec: float
    name_column: str
    def __init__(self, name: _Optional[str] = ..., replace: _Optional[bool] = ..., list_ipc: _Optional[bytes] = ..., moc: _Optional[str] = ..., moc_fits: _Optional[bytes] = ..., skymap_fits: _Optional[bytes] = ..., level: _Optional[float] = ..., radius_column: _Optional[str] = ..., radius_arcsec: _Optional[float] = ..., name_column: _Optional[str] = ...) -> None: ...

class AddWatchResponse(_message.Message):
    __slots__ = ("description_json", "back_matches_ipc")
    DESCRIPTION_JSON_FIELD_NUMBER: _ClassVar[int]
    BACK_MATCHES_IPC_FIELD_NUMBER: _ClassVar[int]
    description_json: str
    back_matches_ipc: bytes
    def __init__(self, description_json: _Optional[str] = ..., back_matches_ipc: _Optional[bytes] = ...) -> None: ...

class ListWatchesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWatchesResponse(_message.Message):
    __slots__ = ("watches_json",)
    WATCHES_JSON_FIELD_NUMBER: _ClassVar[int]
    watches_json: str
    def __init__(self, watches_json: _Optional[str] = ...) -> None: ...

class RemoveWatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveWatchResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NoticeRequest(_message.Message):
    __slots__ = ("notice", "galaxy_catalog", "level")
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    GALAXY_CATALOG_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    notice: bytes
    galaxy_catalog: str
    level: float
    def __init__(self, notice: _Optional[bytes] = ..., galaxy_catalog: _Optional[str] = ..., level: _Optional[float] = ...) -> None: ...

class NoticeResponse(_message.Message):
    __slots__ = ("summary_json", "alerts_ipc", "galaxies_ipc")
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    ALERTS_IPC_FIELD_NUMBER: _ClassVar[int]
    GALAXIES_IPC_FIELD_NUMBER: _ClassVar[int]
    summary_json: str
    alerts_ipc: bytes
    galaxies_ipc: bytes
    def __init__(self, summary_json: _Optional[str] = ..., alerts_ipc: _Optional[bytes] = ..., galaxies_ipc: _Optional[bytes] = ...) -> None: ...

class ContextRequest(_message.Message):
    __slots__ = ("ra_deg", "dec_deg", "mjd_tai")
    RA_DEG_FIELD_NUMBER: _ClassVar[int]
    DEC_DEG_FIELD_NUMBER: _ClassVar[int]
    MJD_TAI_FIELD_NUMBER: _ClassVar[int]
    ra_deg: _containers.RepeatedScalarFieldContainer[float]
    dec_deg: _containers.RepeatedScalarFieldContainer[float]
    mjd_tai: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, ra_deg: _Optional[_Iterable[float]] = ..., dec_deg: _Optional[_Iterable[float]] = ..., mjd_tai: _Optional[_Iterable[float]] = ...) -> None: ...

class ContextResponse(_message.Message):
    __slots__ = ("arrow_ipc", "positions")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    positions: int
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., positions: _Optional[int] = ...) -> None: ...

class AlertBatch(_message.Message):
    __slots__ = ("batch_id", "compact_ipc", "packets")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    COMPACT_IPC_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    compact_ipc: bytes
    packets: PacketList
    def __init__(self, batch_id: _Optional[int] = ..., compact_ipc: _Optional[bytes] = ..., packets: _Optional[_Union[PacketList, _Mapping]] = ...) -> None: ...

class PacketList(_message.Message):
    __slots__ = ("packets",)
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    packets: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, packets: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AnnotateRequest(_message.Message):
    __slots__ = ("options", "batch")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    options: AnnotateOptions
    batch: AlertBatch
    def __init__(self, options: _Optional[_Union[AnnotateOptions, _Mapping]] = ..., batch: _Optional[_Union[AlertBatch, _Mapping]] = ...) -> None: ...

class AnnotateResponse(_message.Message):
    __slots__ = ("batch_id", "arrow_ipc", "alerts", "errors")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    arrow_ipc: bytes
    alerts: int
    errors: int
    def __init__(self, batch_id: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ..., alerts: _Optional[int] = ..., errors: _Optional[int] = ...) -> None: ...
