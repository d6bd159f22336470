# rollback-bot in a container: the wheel built from this checkout, then `pip install` of that wheel alone, as
# tests/test_packaging.py builds and installs it (tests/test_deploy.py checks the two stay the same).
#   docker build -t rollback-bot . && docker run --env-file rollback-bot.env -v /etc/rollback-bot:/etc/rollback-bot:ro \
#     -v rollback-bot-data:/var/lib/rollback-bot rollback-bot
# The runbook's steps run git, yarn and pm2 on the target: mount its folder and pm2 home, and add Node, yarn and
# pm2 in an image built on this one (`rollback-bot check` in the container says what is missing).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md manifest.yml manifest.http.yml rollback.example.yml ./
COPY bot/ bot/
COPY handlers/ handlers/
COPY templates/ templates/
RUN python -m pip wheel --no-deps -w /dist .

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/rollback-bot --shell /usr/sbin/nologin rollback-bot
COPY --from=wheel /dist/ /dist/
RUN python -m pip install --no-cache-dir /dist/rollback_bot-*.whl && rm -rf /dist
USER rollback-bot
WORKDIR /var/lib/rollback-bot
ENV ROLLBACK_CONFIG=/etc/rollback-bot/rollback.yml
VOLUME ["/var/lib/rollback-bot"]
ENTRYPOINT ["rollback-bot"]
CMD ["run"]
