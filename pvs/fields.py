"""Address fields: a model field and a form field that store an address in the registry's spelling.

Whatever way an address is written (``X``, ``ca://X``, ``CA://X``, ``PVA://X``), a PV keeps
``pvs.protocols.normalized`` of it: Channel Access bare, pvAccess with ``pva://``. So ``X`` and
``ca://X`` are one PV (the unique setpoint holds) and ``pva://X`` another. The model field
normalizes on ``clean()`` and on ``save()``; its form field (the admin's, every ModelForm's)
normalizes in ``cleaned_data``, which the admin hands to pvs.services. The API's serializer field
is pvs.api.serializers.AddressField; the importers call ``normalized`` themselves.
"""

from django import forms
from django.db import models

from pvs.protocols import normalized
from pvs.validators import ADDRESS_MAX_LENGTH, validate_address

ADDRESS_HELP = "pva://NAME for pvAccess; NAME (or ca://NAME) for Channel Access."


class AddressFormField(forms.CharField):
    """An address as people type it, cleaned to the registry's spelling."""

    def to_python(self, value):
        value = super().to_python(value)
        return normalized(value) if value else value


class AddressField(models.CharField):
    """A setpoint, readback or config address, stored in the registry's spelling."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", ADDRESS_MAX_LENGTH)
        kwargs.setdefault("validators", [validate_address])
        kwargs.setdefault("help_text", ADDRESS_HELP)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return normalized(value) if value else value

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if value:
            value = normalized(value)
            setattr(model_instance, self.attname, value)
        return value

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": AddressFormField, **kwargs})
