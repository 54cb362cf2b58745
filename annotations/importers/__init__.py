"""Parsers for the preference and value-statement formats researchers bring.

Importing this package registers every built-in format (see ``base.register``).
"""

from annotations.importers import (  # noqa: F401 - imported to register the formats
    gcai,
    generic,
    helpsteer,
    hh_rlhf,
    icai,
    ultrafeedback,
)
from annotations.importers.base import (
    PAIR_FORMATS,
    AnnotationRow,
    DataImportError,
    PairFormat,
    PairRow,
    ParseOptions,
    StatementRow,
    is_empty_response,
    pair_format_choices,
    pair_format_get,
    register,
)
from annotations.importers.detect import pair_format_detect, pair_format_resolve, sniff
from annotations.importers.generic import mapping_parse
from annotations.importers.readers import RecordFormat, TextSource
from annotations.importers.statements import statements_parse

__all__ = [
    "PAIR_FORMATS",
    "AnnotationRow",
    "DataImportError",
    "PairFormat",
    "PairRow",
    "ParseOptions",
    "RecordFormat",
    "StatementRow",
    "TextSource",
    "is_empty_response",
    "mapping_parse",
    "pair_format_choices",
    "pair_format_detect",
    "pair_format_get",
    "pair_format_resolve",
    "register",
    "sniff",
    "statements_parse",
]
