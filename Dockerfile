# tend: one image for `tend server`, `tend worker` and `tend migrate`.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/tend ./cmd/tend

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tend /usr/local/bin/tend
COPY examples /etc/tend/examples
ENV TEND_SEQUENCES=/etc/tend/examples/sequences-production.yaml \
    TEND_SCORING=/etc/tend/examples/scoring.yaml \
    TEND_SALES=/etc/tend/examples/sales-production.yaml \
    TEND_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tend"]
CMD ["server"]
