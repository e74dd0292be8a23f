"""Definitions: sequences (and, later, workflows) written as YAML and validated by pydantic."""

from nurture.definitions.common import Delay, TimeWindow
from nurture.definitions.loader import (
    Definition,
    DefinitionError,
    definition_body,
    definition_json_schema,
    load_definition_file,
    load_definition_text,
    parse_definition,
)
from nurture.definitions.sequence import EligibleDays, EmailStep, SequenceDefinition, SequenceSettings, TaskStep

__all__ = [
    "Definition", "DefinitionError", "Delay", "EligibleDays", "EmailStep", "SequenceDefinition",
    "SequenceSettings", "TaskStep", "TimeWindow", "definition_body", "definition_json_schema",
    "load_definition_file", "load_definition_text", "parse_definition",
]
