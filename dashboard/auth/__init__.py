"""Dashboard authentication and authorisation: users, sessions, tokens, roles, CSRF."""

from dashboard.auth.roles import PUBLIC_ROUTES, ROLE_MATRIX, Role
from dashboard.auth.service import AuthError, AuthService, LoginResult, Principal

__all__ = [
    "PUBLIC_ROUTES", "ROLE_MATRIX", "AuthError", "AuthService", "LoginResult", "Principal", "Role",
]
