CREATE TABLE "audit_dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"stream_id" text NOT NULL,
	"fields" jsonb NOT NULL,
	"raw" text NOT NULL,
	"error" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "audit_dead_letters_stream_id_unique" UNIQUE("stream_id")
);
