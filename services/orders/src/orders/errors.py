from servicekit.errors import AppError


class InsufficientStock(AppError):
    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"
    final = True


class UnknownProduct(AppError):
    status = 422
    code = "unknown_product"
    title = "Unknown product"
    final = True


class InvalidQuantity(AppError):
    status = 422
    code = "invalid_quantity"
    title = "Invalid quantity"


class OrderNotFound(AppError):
    status = 404
    code = "order_not_found"
    title = "Order not found"


class OrderNotCancellable(AppError):
    status = 409
    code = "order_not_cancellable"
    title = "Order cannot be cancelled"
