"""The schema, its guards (depth, tokens, aliases, cost, operations per client) and error codes."""

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
import structlog
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    Node,
    Visitor,
    visit,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule, ValidationContext
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionResult
from strawberry.utils.str_converters import to_camel_case

from gateway.account_fields import AccountsMutation, AccountsQuery
from gateway.cost import CostEstimator, QueryCostLimit
from gateway.errors import GatewayError, ServiceUnavailable, TopLevelCode
from gateway.metrics import GRAPHQL_OPERATIONS
from gateway.mutations import Mutation as ShopMutation
from gateway.notification_fields import NotificationsMutation, NotificationsQuery
from gateway.operation_limit import OperationLimit
from gateway.queries import Query as ShopQuery
from gateway.settings import GatewaySettings
from gateway.types.scalars import SCALARS
from servicekit.errors import current_request_id, retryable_database_failure

log = structlog.get_logger()


# The roots: the shop's and the catalog's fields first, then the admin's fields over the notifications worker,
# then accounts and API keys.
@strawberry.type(name="Query")
class Query(ShopQuery, NotificationsQuery, AccountsQuery):
    pass


@strawberry.type(name="Mutation")
class Mutation(ShopMutation, NotificationsMutation, AccountsMutation):
    pass


def shape_error(error: GraphQLError) -> GraphQLError:
    """Give every top-level error a code; mask anything unexpected.

    - our refusals (GatewayError) keep their message and extensions;
    - errors with no path are about the request itself (syntax, validation, depth, aliases, tokens,
      variables that do not coerce): BAD_REQUEST, message kept (it names only the client's own input);
    - anything else raised while resolving is a bug or an upstream failure: INTERNAL with the request id,
      logged with its stack trace here and never sent.
    """
    original = error.original_error
    if isinstance(original, GatewayError):
        return error
    if original is not None and retryable_database_failure(original) is not None:
        # The gateway's own database (accounts) is down, restarting or busy: retryable, like an upstream 503.
        log.warning("database_unavailable", path=error.path, error=type(original).__name__)
        unavailable = ServiceUnavailable("The sign-in database is temporarily unavailable.")
        return GraphQLError(
            str(unavailable), nodes=error.nodes, path=error.path, extensions=unavailable.extensions
        )
    if error.path is None and (
        original is None or isinstance(original, (GraphQLError, ValueError, TypeError))
    ):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", TopLevelCode.BAD_REQUEST.value)
        return GraphQLError(
            error.message[:500],
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )
    request_id = current_request_id()
    log.error("resolver_failed", path=error.path, error=repr(original), exc_info=original)
    return GraphQLError(
        "Internal error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": TopLevelCode.INTERNAL.value, "requestId": request_id},
    )


def _root_field(document: Any) -> str:
    """The operation's first root field if the schema has it (bounded label values), else 'other'."""
    try:
        selection = document.definitions[0].selection_set.selections[0]
        name = str(selection.name.value)
    except (AttributeError, IndexError, TypeError):
        return "other"
    return name if name in ROOT_FIELDS else "other"


class ShapeErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        GRAPHQL_OPERATIONS.labels(
            _root_field(self.execution_context.graphql_document),
            "error" if result is not None and getattr(result, "errors", None) else "ok",
        ).inc()
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [shape_error(error) for error in result.errors]
        elif result is not None and getattr(result, "errors", None):
            result.errors = [shape_error(error) for error in result.errors]  # type: ignore[union-attr]


class ParsedDocuments:
    """The documents parsed so far, by query text and parse options; at most ``maxsize``, least recent out."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._documents: OrderedDict[tuple[str, tuple[tuple[str, Any], ...]], DocumentNode] = OrderedDict()

    def extension(self) -> SchemaExtension:
        return _ParseCache(self)

    def get(self, key: tuple[str, tuple[tuple[str, Any], ...]]) -> DocumentNode | None:
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
        return document

    def __len__(self) -> int:
        return len(self._documents)

    def put(self, key: tuple[str, tuple[tuple[str, Any], ...]], document: DocumentNode) -> None:
        self._documents[key] = document
        while len(self._documents) > self.maxsize:
            self._documents.popitem(last=False)


class _ParseCache(SchemaExtension):
    """Hands a repeated document its earlier parse. Unlike strawberry's ParserCache, it never parses itself:
    a miss is parsed by strawberry as usual, so a syntax error still gets its BAD_REQUEST code in ShapeErrors
    (ParserCache's parse raises outside strawberry's error handling); only a successful parse is kept."""

    def __init__(self, documents: ParsedDocuments) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        key = (context.query or "", tuple(sorted(context.parse_options.items())))
        if context.graphql_document is None and context.query:
            context.graphql_document = self.documents.get(key)
        yield
        if context.graphql_document is not None and context.query and not context.pre_execution_errors:
            self.documents.put(key, context.graphql_document)


class _SpreadNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _spread_names(node: Node) -> set[str]:
    visitor = _SpreadNames()
    visit(node, visitor)
    return visitor.names


def _fragments_are_measurable(document: DocumentNode) -> bool:
    """True when every fragment spread names a fragment the document defines and no fragment spreads itself,
    directly or through others. Strawberry's depth rule follows spreads recursively as the document is built:
    an undefined one raises KeyError, and a cycle recurses until RecursionError (whose traceback, logged by
    the server, crashed CPython 3.11 once). graphql-core's own KnownFragmentNamesRule and NoFragmentCyclesRule
    refuse such documents with a message a person can act on."""
    spreads = {
        definition.name.value: _spread_names(definition)
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    used = _spread_names(document)
    if not used <= spreads.keys():
        return False
    done: set[str] = set()

    def acyclic(name: str, path: set[str]) -> bool:  # fragments are few and small: a plain DFS
        if name in path:
            return False
        if name in done:
            return True
        if not all(acyclic(child, path | {name}) for child in spreads[name]):
            return False
        done.add(name)
        return True

    return all(acyclic(name, set()) for name in spreads)


def _tolerate_unknown_fragments(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """The depth rule, measuring only documents whose fragments it can follow (see
    _fragments_are_measurable); graphql-core's rules refuse the others ("Unknown fragment 'Nope'.",
    "Cannot spread fragment 'A' within itself via 'B'.")."""

    class TolerantRule(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            if _fragments_are_measurable(context.document):
                super().__init__(context)
            else:
                ASTValidationRule.__init__(self, context)

    return TolerantRule


class _ValidationCache(ValidationCache):
    """Strawberry's cache, skipping an operation refused before validation (OperationLimit): validating it
    would spend the very CPU the limit is there to save, and its refusal would be overwritten."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
        else:
            yield from super().on_validate()


class GatewaySchema(strawberry.Schema):
    parsed_documents: ParsedDocuments | None = None

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry would log every error's message, and the message of a variable that does not coerce
        quotes the value sent: a card number, a password. ShapeErrors logs the unexpected errors (without
        variables); the client's own mistakes are in its response and in the metrics, never in the logs."""


def build_schema(settings: GatewaySettings) -> GatewaySchema:
    # The depth, alias and introspection rules are built once per schema and added by one AddValidationRules:
    # the limiter extensions would build a new rule class for every operation, and the validation cache,
    # keyed by (document, rules), would then never hit.
    rules = [
        *(
            _tolerate_unknown_fragments(rule)
            for rule in QueryDepthLimiter(settings.max_query_depth).validation_rules
        ),
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories, not instances: an extension keeps per-operation state, so each operation gets its own.
    # Clients send the same few documents over and over, and validating one was over half of a placeOrder's
    # gateway CPU. ValidationCache shares one bounded LRU across operations (keyed by document and rules), so
    # a client sending endless distinct queries costs at most document_cache_size entries. Parsing the same
    # few documents was the next largest share once validation was cached (~8 % of placeOrder's CPU):
    # ParsedDocuments keeps as many parsed documents, bounded the same way.
    # Every operation counts against its client's budget once parsed, before validation (OperationLimit);
    # one that passes validation is priced before it runs (gateway.cost, with a price cache of its own).
    documents = ParsedDocuments(maxsize=settings.document_cache_size)
    costs = CostEstimator(
        default_list_size=settings.default_list_size, cache_size=settings.document_cache_size
    )
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        ShapeErrors,
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        documents.extension,
        lambda: AddValidationRules(rules),
        OperationLimit,
        lambda: _ValidationCache(maxsize=settings.document_cache_size),
        lambda: QueryCostLimit(costs, settings.max_query_cost),
    ]
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=dict(SCALARS)),
    )
    schema.parsed_documents = documents
    return schema


# Root field names as clients write them (strawberry camel-cases python names unless a name is given).
ROOT_FIELDS = frozenset(
    field.graphql_name or to_camel_case(field.python_name)
    for root in (Query, Mutation)
    for field in root.__strawberry_definition__.fields  # type: ignore[union-attr]
)


def printed_schema() -> str:
    """The SDL as committed in gateway/schema.graphql."""
    return build_schema(GatewaySettings()).as_str() + "\n"
