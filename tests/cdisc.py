"""CDISC's own artefacts for the export tests: the ODM 1.3.2 XML Schema as the PyPI package
``odmlib`` ships it (CDISC's schema files, MIT-packaged), and odmlib's ODM 1.3.2 reader."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import odmlib
from lxml import etree
from odmlib.loader import ODMLoader
from odmlib.odm_loader import XMLODMLoader

from services.projections.odm import ODM_NS

ODM_1_3_2_XSD = Path(odmlib.__file__).parent / "schemas/odm/1.3.2/ODM1-3-2.xsd"


@cache
def odm_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(ODM_1_3_2_XSD)))


def schema_errors(xml: bytes) -> list[str]:
    """Every error of ``xml`` against the official ODM 1.3.2 schema (none: valid)."""
    schema = odm_schema()
    schema.validate(etree.fromstring(xml))
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def odmlib_root(xml: bytes) -> Any:
    """The document as odmlib's ODM 1.3.2 object model reads it."""
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri=ODM_NS))
    loader.load_odm_string(xml.decode("utf-8"))
    return loader.root()
