"""Views of the test app: bulk changes and a rolled-back transaction, made
inside a request (so inside the middleware's context)."""
from django.db import transaction
from django.http import HttpResponse

from .models import Product


def bulk(request):
    Product.objects.bulk_create([Product(sku="B-1", stock=1), Product(sku="B-2", stock=2)])
    n = Product.objects.filter(sku__startswith="B-").update(stock=10)
    objs = list(Product.objects.filter(sku__startswith="B-").order_by("sku"))
    objs[0].stock = 11
    Product.objects.bulk_update(objs, ["stock"])
    return HttpResponse(str(n))


def rollback(request):
    try:
        with transaction.atomic():
            Product.objects.create(sku="RB-1", stock=1)
            raise RuntimeError("no")
    except RuntimeError:
        pass
    return HttpResponse("rolled back")
