from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from inventory import service
from inventory.schemas import ProductCreate, ProductRead, ProductUpdate, StockChange
from servicekit.callers import allow
from servicekit.db import SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.validation import MAX_ID, JsonBody, parse_id_list

# Who may call (servicekit.callers): the gateway, for the catalogue it shows and the admin's edits.
CALLERS = allow(reads=["gateway"], writes=["gateway"])
router = APIRouter(tags=["products"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

ProductId = Annotated[int, Path(ge=1, le=MAX_ID, description="The product's id")]


@router.get("/products", response_model=list[ProductRead])
async def list_products(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Return products with an id above this")] = 0,
    ids: Annotated[str | None, Query(max_length=2100, description="Comma-separated ids (up to 100)")] = None,
) -> list[ProductRead]:
    return await service.list_products(
        session, after=after, limit=limit, ids=parse_id_list(ids, "ids") if ids is not None else None
    )


@router.get("/products/{product_id}", response_model=ProductRead)
async def get_product(session: SessionDep, product_id: ProductId) -> ProductRead:
    return await service.get_product(session, product_id)


@router.post("/products", response_model=ProductRead, status_code=status.HTTP_201_CREATED)
async def create_product(session: SessionDep, body: ProductCreate) -> ProductRead:
    return await service.create_product(session, body)


@router.patch("/products/{product_id}", response_model=ProductRead)
async def update_product(session: SessionDep, product_id: ProductId, body: ProductUpdate) -> ProductRead:
    return await service.update_product(session, product_id, body)


@router.patch("/products/{product_id}/stock", response_model=ProductRead)
async def change_stock(session: SessionDep, product_id: ProductId, body: StockChange) -> ProductRead:
    return await service.change_stock(session, product_id, body)
