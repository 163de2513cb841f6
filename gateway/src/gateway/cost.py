"""What an operation would cost to answer, estimated before it runs, and the guard that refuses costly ones.

The depth, alias and token limits bound a document's size, not its work: ``products(first: 100)`` nesting
``items`` and aliased thirty times passes all three. The estimate (README, "Limits"):

- every field costs 1, plus its selections;
- a list field multiplies its selections' cost by its size: its own page-size argument (``first``), or the
  length of the list of ids it answers for (``productsByIds(ids:)``), or the page size of the connection it
  is the ``nodes`` of, or ``default_list_size`` when nothing bounds it (``items``, ``refunds``,
  ``payments``, ``errors``);
- a page size given as a variable takes the variable's value (else its default, else the argument's), and
  a list of ids its length;
- fragments and inline fragments count where they are spread; ``@skip``/``@include`` are ignored (the
  estimate is an upper bound); introspection (``__schema``, ``__type``) costs 1: its answer is the schema,
  bounded by the schema, and GATEWAY_INTROSPECTION=false switches it off.

Why an extension step and not a graphql-core validation rule: rules never see variables, and the validation
cache (schema.build_schema) keys on the document alone, while the UIs send their page size as ``$first``.
Pricing every variable at its bound (100) would price their pages five times over. So the estimate runs
after validation, on a document validation has passed (its fragments exist and do not cycle, its depth is
bounded), and its results are kept in an LRU of their own, keyed by the query text, the operation name, the
integer variables and the lengths of the list variables (page sizes are integers, id lists size by their
length; no other value is kept, so no card number or password sits in the cache).
"""

from collections import OrderedDict
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    value_from_ast_untyped,
)
from graphql.type import GraphQLField, GraphQLNamedType
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from gateway.errors import BadRequest

# The arguments that size a list. The schema uses `first` (a page) and `ids` (a batch, sized by its length);
# `last` and `limit` are the usual others.
PAGE_SIZE_ARGUMENTS = ("first", "last", "limit", "ids")

# A frame asks for the cost of a selection set: its selections, the type they select on, and the page size
# its parent field sets for its list fields (None: no page size). A named fragment is asked by name.
_Ask = tuple[Sequence[SelectionNode], GraphQLNamedType, int | None] | tuple[str, GraphQLNamedType, int | None]


class CostEstimator:
    """Prices operations (see the module docstring) and remembers the last ``cache_size`` prices."""

    def __init__(self, *, default_list_size: int, cache_size: int) -> None:
        self.default_list_size = default_list_size
        self.cache_size = cache_size
        self._prices: OrderedDict[tuple[str, str | None, tuple[tuple[str, int], ...]], int] = OrderedDict()

    def price(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """The operation's cost, from the cache when this query with these page sizes was priced before."""
        sizes = tuple(
            sorted(
                (name, size)
                for name, value in (variables or {}).items()
                if (size := _variable_size(value)) is not None
            )
        )
        key = (query, operation_name, sizes)
        cost = self._prices.get(key)
        if cost is not None:
            self._prices.move_to_end(key)
            return cost
        cost = self.estimate(schema, document, operation_name, variables)
        self._prices[key] = cost
        while len(self._prices) > self.cache_size:
            self._prices.popitem(last=False)
        return cost

    def estimate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """The operation's cost; 0 when the document has no such operation (execution refuses it)."""
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return 0
        root = _root_type(schema, operation.operation)
        if root is None:
            return 0
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        pricing = _Pricing(schema, self.default_list_size, operation, fragments, dict(variables or {}))
        return pricing.run((operation.selection_set.selections, root, None))


class _Pricing:
    """One estimate. The walk is a stack of generators, not recursion: a document nesting inline fragments
    hundreds deep (the token limit allows ~400) must not meet Python's recursion limit. Each named fragment
    is priced once per page size and remembered, so a fragment spread twice in each of ten fragments costs
    ten walks, not 2**10."""

    def __init__(
        self,
        schema: GraphQLSchema,
        default_list_size: int,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.default_list_size = default_list_size
        self.operation = operation
        self.fragments = fragments
        self.variables = variables
        self.fragment_costs: dict[tuple[str, int | None], int] = {}

    def run(self, ask: _Ask) -> int:
        stack: list[tuple[Generator[_Ask, int, int], tuple[str, int | None] | None]] = [
            (self._cost(ask), None)
        ]
        in_progress: set[tuple[str, int | None]] = set()
        answer: int | None = None
        while stack:
            walk, memo_key = stack[-1]
            try:
                child = walk.send(answer) if answer is not None else next(walk)
            except StopIteration as done:
                stack.pop()
                cost: int = done.value
                if memo_key is not None:
                    self.fragment_costs[memo_key] = cost
                    in_progress.discard(memo_key)
                answer = cost
                continue
            answer = None
            if isinstance(child[0], str):
                key = (child[0], child[2])
                if key in self.fragment_costs:
                    answer = self.fragment_costs[key]
                    continue
                if key in in_progress or child[0] not in self.fragments:
                    # Validation refuses cycles and unknown fragments before this runs; should one get here,
                    # it is priced as nothing rather than walked forever.
                    answer = 0
                    continue
                in_progress.add(key)
                stack.append((self._cost(child), key))
            else:
                stack.append((self._cost(child), None))
        assert answer is not None
        return answer

    def _cost(self, ask: _Ask) -> Generator[_Ask, int, int]:
        """The cost of one selection set; yields the selection sets (and fragments) it needs priced."""
        selections_or_name, parent, page = ask
        if isinstance(selections_or_name, str):
            fragment = self.fragments[selections_or_name]
            on = self.schema.get_type(fragment.type_condition.name.value)
            selections: Sequence[SelectionNode] = fragment.selection_set.selections
            parent = on or parent
        else:
            selections = selections_or_name
        total = 0
        for selection in selections:
            if isinstance(selection, FieldNode):
                total += 1
                field = _field(parent, selection.name.value)
                if field is None or selection.selection_set is None:
                    continue  # a leaf, __typename, or introspection
                nullable = get_nullable_type(field.type)
                own_page = self._page_size(selection, field)
                child_type = get_named_type(field.type)
                if is_list_type(nullable):
                    size = own_page if own_page is not None else page
                    size = self.default_list_size if size is None else size
                    total += size * (yield (selection.selection_set.selections, child_type, None))
                else:
                    total += yield (selection.selection_set.selections, child_type, own_page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else None
                total += yield (selection.selection_set.selections, on or parent, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += yield (selection.name.value, parent, page)
        return total

    def _page_size(self, node: FieldNode, field: GraphQLField) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value in PAGE_SIZE_ARGUMENTS:
                return self._size_of(argument.value, field.args[argument.name.value].default_value)
        for name in PAGE_SIZE_ARGUMENTS:
            if name in field.args:
                return _as_size(field.args[name].default_value)
        return None

    def _size_of(self, value: Any, argument_default: Any) -> int | None:
        if isinstance(value, VariableNode):
            name = value.name.value
            if self.variables.get(name) is not None:
                return _as_size(self.variables[name])
            for definition in self.operation.variable_definitions or ():
                if definition.variable.name.value == name and definition.default_value is not None:
                    return _as_size(value_from_ast_untyped(definition.default_value))
            return _as_size(argument_default)
        if isinstance(value, (IntValueNode, ListValueNode)):
            return _as_size(value_from_ast_untyped(value))
        return _as_size(argument_default)


def _root_type(schema: GraphQLSchema, operation: OperationType) -> GraphQLNamedType | None:
    if operation is OperationType.QUERY:
        return schema.query_type
    if operation is OperationType.MUTATION:
        return schema.mutation_type
    return schema.subscription_type


def _field(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if name.startswith("__"):
        return None  # __typename, __schema, __type: see the module docstring
    fields = getattr(parent, "fields", None)
    found: GraphQLField | None = fields.get(name) if fields is not None else None
    return found


def _variable_size(value: Any) -> int | None:
    """What of a variable can change a price: an integer (a page size) or a list's length (ids)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return len(value)
    return None


def _as_size(value: Any) -> int | None:
    """A page size from an argument's value: an integer (never below 0), or a list's length (``ids``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, list):
        return len(value)
    return None


class QueryCostLimit(SchemaExtension):
    """Refuses an operation whose estimate is over ``limit``, before it runs: BAD_REQUEST, saying both.

    It runs in ``on_execute``, which strawberry enters only for a document that passed validation; setting
    the result there is strawberry's way to answer without executing."""

    def __init__(self, estimator: CostEstimator, limit: int) -> None:
        super().__init__()
        self.estimator = estimator
        self.limit = limit

    def on_execute(self) -> Iterator[None]:
        context: ExecutionContext = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            # The graphql-core schema, as strawberry's own ValidationCache reaches it.
            schema = context.schema._schema
            cost = self.estimator.price(
                schema, context.query or "", document, context.operation_name, context.variables
            )
            if cost > self.limit:
                refusal = BadRequest(
                    f"This operation would cost about {cost}, over the limit of {self.limit} "
                    "(each field costs 1; a list multiplies its fields by its page size, `first`). "
                    "Ask for smaller pages or fewer fields."
                )
                context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(str(refusal), original_error=refusal)]
                )
        yield
