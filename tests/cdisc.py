"""CDISC's own artefacts for the export tests: the ODM 1.3.2 and Define-XML 2.0 XML
Schemas as the PyPI package ``odmlib`` ships them (CDISC's schema files, MIT-packaged),
and odmlib's ODM 1.3.2 reader."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import odmlib
from lxml import etree
from odmlib.loader import ODMLoader
from odmlib.odm_loader import XMLODMLoader

from services.projections.odm import ODM_NS

SCHEMAS = Path(odmlib.__file__).parent / "schemas"
ODM_1_3_2_XSD = SCHEMAS / "odm/1.3.2/ODM1-3-2.xsd"
DEFINE_2_0_XSD = SCHEMAS / "define/2.0/define2-0-0.xsd"


@cache
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def schema_errors(xml: bytes, schema: Path = ODM_1_3_2_XSD) -> list[str]:
    """Every error of ``xml`` against the official ODM 1.3.2 schema, or another (the
    Define-XML 2.0 one: ``DEFINE_2_0_XSD``); none: valid."""
    validator = _schema(schema)
    validator.validate(etree.fromstring(xml))
    return [f"line {e.line}: {e.message}" for e in validator.error_log]


def odmlib_root(xml: bytes) -> Any:
    """The document as odmlib's ODM 1.3.2 object model reads it."""
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri=ODM_NS))
    loader.load_odm_string(xml.decode("utf-8"))
    return loader.root()
