"""Plugins for ariadne-codegen, which generates the web shop's and the admin's GraphQL clients
(``uv run task codegen``; see tools/codegen/pyproject.toml for why it has an environment of its own)."""

import ast
import re

from ariadne_codegen.plugins.base import Plugin
from graphql import GraphQLEnumType, Node

_DIGITS_AFTER_UNDERSCORE = re.compile(r"(?<=[a-z])_(?=\d)")


class StrEnumPlugin(Plugin):
    """The schema's enums as ``enum.StrEnum``, not ``(str, Enum)``: a member is its value wherever it is
    shown, formatted or logged (``str(OrderStatus.PAID) == "PAID"``), exactly as the plain strings the
    hand-written clients passed around; with ``(str, Enum)`` a page or a log line would say
    ``OrderStatus.PAID``."""

    def generate_enum(self, class_def: ast.ClassDef, enum_type: GraphQLEnumType) -> ast.ClassDef:
        class_def.bases = [ast.Name(id="StrEnum", ctx=ast.Load())]
        return class_def

    def generate_enums_module(self, module: ast.Module) -> ast.Module:
        for node in module.body:
            if isinstance(node, ast.ImportFrom) and node.module == "enum":
                node.names = [ast.alias(name="StrEnum")]
        return module


class DigitsStayPlugin(Plugin):
    """Digits stay with the word before them in snake_case names: ``cardLast4`` is ``card_last4`` and
    ``line1`` is ``line1`` (ariadne-codegen would make them ``card_last_4`` and ``line_1``), as the apps and
    their templates have always spelled them. Each field keeps its schema name as its alias."""

    def process_name(self, name: str, node: Node | None = None) -> str:
        return _DIGITS_AFTER_UNDERSCORE.sub("", name)
