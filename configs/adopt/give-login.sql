-- Run by `python -m ops adopt` in the adopted PostgreSQL, as the compose stack's user, connected to the
-- `postgres` database: the program's login takes over the compose stack's database, data untouched.
-- Its values come from the environment (ADOPT_OLD_DB, ADOPT_NEW_USER, ADOPT_NEW_PASSWORD, ADOPT_NEW_DB),
-- never from the command line, which `ps` shows.
-- Re-runnable: each step checks whether it is done. The compose stack's role stays (drop it once no
-- application uses it); being the bootstrap superuser, it cannot hand its objects over, so the
-- program's role is a superuser too, as it would be in a database the program initialised.
\set ON_ERROR_STOP on
\getenv old_db ADOPT_OLD_DB
\getenv new_user ADOPT_NEW_USER
\getenv new_password ADOPT_NEW_PASSWORD
\getenv new_db ADOPT_NEW_DB

SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'new_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'new_user') \gexec
ALTER ROLE :"new_user" PASSWORD :'new_password';

-- A database is renamed only with nobody connected to it.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'old_db' AND pid <> pg_backend_pid();
SELECT format('ALTER DATABASE %I RENAME TO %I', :'old_db', :'new_db')
WHERE :'old_db' <> :'new_db' AND EXISTS (SELECT FROM pg_database WHERE datname = :'old_db') \gexec
ALTER DATABASE :"new_db" OWNER TO :"new_user";

-- The program's init script creates pgvector's extension in a new database; an adopted one gets it here.
\connect :"new_db"
CREATE EXTENSION IF NOT EXISTS vector;
