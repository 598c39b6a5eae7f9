"""One GraphQL request: parsed within size limits, validated (with a depth limit), executed, and its
errors in GraphQL's shape with `extensions.code`, never a stack trace."""

import logging
from collections.abc import Mapping
from functools import lru_cache

from graphene.validation import depth_limit_validator
from graphql import DocumentNode, ExecutionContext, GraphQLError, execute, parse, specified_rules, validate

from graphql_odata.graphql.resolve import RequestContext, Shaped
from graphql_odata.graphql.types import graphql_schema

MAX_QUERY_CHARACTERS = 20_000
MAX_QUERY_TOKENS = 4_000
MAX_DEPTH = 10
"""Levels of selection (introspection aside): a connection's `edges { node { ... } }` takes three."""

log = logging.getLogger(__name__)


def run_query(query: object, variables: object, operation_name: object, context: RequestContext) -> tuple[int, dict]:
    """The HTTP status and body of one request. A request GraphQL can read answers 200 whatever its
    errors (GraphQL over HTTP, `application/json`); one it cannot read at all is a 400."""
    if not isinstance(query, str) or not query.strip():
        return 400, _errors(GraphQLError('no query: send {"query": "..."}'), "BAD_REQUEST")
    if variables is not None and not isinstance(variables, Mapping):
        return 400, _errors(GraphQLError("variables must be a JSON object"), "BAD_REQUEST")
    if operation_name is not None and not isinstance(operation_name, str):
        return 400, _errors(GraphQLError("operationName must be a string"), "BAD_REQUEST")
    if len(query) > MAX_QUERY_CHARACTERS:
        message = f"the query is {len(query):,} characters; at most {MAX_QUERY_CHARACTERS:,}"
        return 400, _errors(GraphQLError(message), "LIMIT_EXCEEDED", limit="size")
    try:
        document, problems = _checked(query, MAX_DEPTH)
    except GraphQLError as error:
        code = "LIMIT_EXCEEDED" if "tokens" in error.message else "GRAPHQL_PARSE_FAILED"
        return 400, _errors(error, code)
    if problems:
        return 200, {"errors": [_validation_error(problem) for problem in problems]}
    result = execute(
        graphql_schema().graphql_schema,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        execution_context_class=ShapedExecutionContext,
    )
    body: dict[str, object] = {"data": result.data}
    if result.errors:
        body["errors"] = [_formatted(error, "BAD_USER_INPUT") for error in result.errors]
    return 200, body


@lru_cache(maxsize=512)
def _checked(query: str, max_depth: int) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """The parsed document and what validation found: the same for the same text, and clients send
    the same few queries with new variables (checking a page's query took longer than reading it)."""
    document = parse(query, max_tokens=MAX_QUERY_TOKENS)
    rules = [*specified_rules, depth_limit_validator(max_depth=max_depth)]
    return document, tuple(validate(graphql_schema().graphql_schema, document, rules))


class ShapedExecutionContext(ExecutionContext):
    """Puts a root field's `Shaped` answer in the response as it is: the resolver built it from the
    same selection graphql-core collects, and completing each of its values again cost more than
    the read."""

    def complete_value(self, return_type, field_nodes, info, path, result):  # graphql-core's signature
        if isinstance(result, Shaped):
            return result.value
        return super().complete_value(return_type, field_nodes, info, path, result)


def _validation_error(error: GraphQLError) -> dict:
    if "maximum operation depth" in error.message:
        return _formatted(error, "LIMIT_EXCEEDED", limit="depth")
    return _formatted(error, "GRAPHQL_VALIDATION_FAILED")


def _errors(error: GraphQLError, code: str, **extensions: object) -> dict:
    return {"errors": [_formatted(error, code, **extensions)]}


def _formatted(error: GraphQLError, code: str, **extensions: object) -> dict:
    """`error` as the response shows it. An error raised by a resolver that is not a GraphQLError is
    a defect: its message may name internals, so the client reads "internal error" and the log the rest."""
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        log.error("GraphQL resolver failed at %s", error.path, exc_info=original)
        error = GraphQLError("internal error; the server log has the details", error.nodes, path=error.path)
        code = "INTERNAL_SERVER_ERROR"
    formatted = error.formatted
    given = dict(formatted.get("extensions") or {})
    formatted["extensions"] = {"code": code, **extensions, **given}
    return formatted
