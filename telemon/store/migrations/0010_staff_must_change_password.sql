-- A password someone else chose (an admin's reset) is replaced by its owner at their next login:
-- until then the dashboard lets them reach only the change-password page and sign out
-- (dashboard.authz.current_user). Existing passwords were chosen as before: no change forced.
ALTER TABLE staff ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
