"""Models of the Django test app: articles with tags (many-to-many)."""
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Article(models.Model):
    title = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    published = models.DateTimeField(null=True)
    secret = models.CharField(max_length=50, default="")
    tags = models.ManyToManyField(Tag)
