import strawberry


@strawberry.type
class PageInfo:
    end_cursor: str | None
    has_next_page: bool
