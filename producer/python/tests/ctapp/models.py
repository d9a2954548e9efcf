"""Models of the Django test app: articles with tags (many-to-many), and a
product tracked with the decorator whose fields have Decimal, date, JSON
and UUID defaults."""
import datetime
import uuid

from django.db import models

import changetrail.django


class Tag(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self):
        return self.name


class Article(models.Model):
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    published = models.DateTimeField(null=True)
    secret = models.CharField(max_length=50, default="")
    tags = models.ManyToManyField(Tag)

    def __str__(self):
        return self.title


def default_attrs():
    return {"colour": "red", "sizes": [1, 2]}


@changetrail.django.track(exclude=["internal_note"])
class Product(models.Model):
    sku = models.CharField(max_length=20, unique=True)
    stock = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    available = models.DateField(default=datetime.date(2024, 1, 1))
    attrs = models.JSONField(default=default_attrs)
    ref = models.UUIDField(default=uuid.UUID("12345678-1234-5678-1234-567812345678"))
    internal_note = models.CharField(max_length=50, default="")

    def __str__(self):
        return self.sku
