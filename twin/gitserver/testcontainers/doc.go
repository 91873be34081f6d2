// Package testcontainers runs the twin's Git server as a Gitea container through testcontainers-go, for
// machines with a Docker engine and a Gitea image. A twin spec selects it instead of the default local
// process (gitserver.Start) when Gitea cannot be built, or to test against the exact image a team runs.
//
// The container is configured like the local server: the same app.ini settings (gitserver.CommonSettings,
// passed as GITEA__section__KEY environment variables, which the image's entrypoint writes into app.ini),
// plus the container's own paths, port 3000 and URL. It is ready when GET /api/v1/version on the mapped port
// answers 200 with the profile's Gitea version. Start then creates the admin user and its token with the same
// `gitea admin user create` arguments (gitserver.AdminCreateArgs) run inside the container, and returns a
// handle whose Admin client is a gitserver.Client like the local server's.
//
// What runs where: Request only builds the testcontainers.GenericContainerRequest (image, environment,
// exposed port, wait strategy) and is unit-tested without Docker. Start and Stop need an engine; this
// project's CI machines have none (RECIPES.md "Docker, kind, testcontainers": no engine runs by default, no
// image can be pulled), so they are not exercised there. RECIPES.md notes testcontainers-go v0.45.0 works with
// a local engine given TESTCONTAINERS_RYUK_DISABLED=true and TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1.
//
// Limits of the container backend: ROOT_URL is http://localhost:3000/ because the mapped host port is only
// known after start, so clone URLs in API answers and webhook payloads name port 3000 (use Gitea.URL for
// requests); webhooks to a receiver on the host need an address the container can reach (e.g. the Docker
// bridge gateway), which ALLOWED_HOST_LIST=loopback,private permits; the generated secrets are visible in the
// container's environment (docker inspect), acceptable for a throwaway test container only.
//
// The package imports gitserver and testcontainers-go; nothing in the default path (gitserver.Start) imports
// it, so the Docker client stays out of builds that do not select this backend.
package testcontainers
