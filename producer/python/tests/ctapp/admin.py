from django.contrib import admin

from changetrail.admin import ChangetrailHistoryAdmin

from .models import Article, Product


@admin.register(Article)
class ArticleAdmin(ChangetrailHistoryAdmin, admin.ModelAdmin):
    pass


@admin.register(Product)
class ProductAdmin(ChangetrailHistoryAdmin, admin.ModelAdmin):
    pass
