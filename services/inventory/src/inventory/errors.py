from servicekit.errors import AppError


class ProductNotFound(AppError):
    status = 404
    code = "product_not_found"
    title = "Product not found"


class InsufficientStock(AppError):
    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"
