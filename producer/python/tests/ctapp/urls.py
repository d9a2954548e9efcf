from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("bulk/", views.bulk),
    path("rollback/", views.rollback),
]
