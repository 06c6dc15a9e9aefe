"""Who may call the GreenArrow API: active staff users, by HTTP Basic authentication.

GreenArrow accepts the credentials of any account that may log in to its web interface; the
equivalent here is a Django user who may log in to the admin (active and staff).
"""

from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication


class StaffBasicAuthentication(BasicAuthentication):
    www_authenticate_realm = "RelayAPI"

    def authenticate_credentials(self, userid, password, request=None):
        user, auth = super().authenticate_credentials(userid, password, request)
        if not user.is_staff:
            raise exceptions.AuthenticationFailed("this account may not log in to the admin")
        return user, auth
