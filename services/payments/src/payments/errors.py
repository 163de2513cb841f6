from servicekit.errors import AppError


class ChargeNotFound(AppError):
    status = 404
    code = "charge_not_found"
    title = "Charge not found"


class OrderAlreadyCharged(AppError):
    """The order already has a succeeded charge: charging it again would be a double charge."""

    status = 409
    code = "order_already_charged"
    title = "Order already charged"
    final = True


class ChargeInProgress(AppError):
    """Another request (with another key) is charging this order right now."""

    status = 409
    code = "charge_in_progress"
    title = "A charge for this order is in progress"
