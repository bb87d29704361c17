"""A Pipecat phone bot that answers voice-edge's WebRTC calls as if they were Twilio calls.

Nothing in here knows about voice-edge: it is the usual Pipecat setup for Twilio Media Streams
(FastAPI WebSocket endpoint, parse_telephony_websocket, TwilioFrameSerializer,
FastAPIWebsocketTransport). voice-edge connects to it as Twilio would when its backend protocol is
twilio-media-streams (see README.md).

What the bot does, so a caller (or a test) can tell each part works:
- greets with a tone (440 Hz, --greeting-s seconds), with a Twilio `mark` after each second of it;
- a caller who talks during the greeting interrupts it (barge-in): Pipecat's interruption, which its
  serializer sends as a Twilio `clear`;
- then echoes the caller's audio back;
- hangs up (ends its pipeline, which closes the WebSocket) after --idle-hang-up-s of caller silence.

Each of these is printed on stdout as one JSON object per line (`event`, `t`: seconds since the
call's `start`), for people watching and for voice-edge's end-to-end test.
"""

import argparse
import asyncio
import json
import math
import struct
import sys
import time

import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse
from loguru import logger
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

RATE = 8000  # Twilio Media Streams: 8 kHz μ-law; the pipeline runs at that rate, no resampling.
GREETING_HZ = 440
# RMS (of int16 samples) above which the caller counts as talking: about -30 dBFS. A browser's
# silence, or a quiet room after echo cancellation, stays far below it.
TALK_RMS = 1000
# Consecutive loud 20 ms frames that make a barge-in: one click or pop does not interrupt.
BARGE_IN_FRAMES = 2


def emit(event: str, started: float | None, **fields) -> None:
    """One JSON line on stdout (logs go to stderr)."""
    t = None if started is None else round(time.monotonic() - started, 3)
    print(json.dumps({"event": event, "t": t, **fields}), flush=True)


def rms(pcm: bytes) -> float:
    count = len(pcm) // 2
    if count == 0:
        return 0.0
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    return math.sqrt(sum(s * s for s in samples) / count)


def tone(hz: int, seconds: float, amplitude: float = 0.3) -> bytes:
    count = int(RATE * seconds)
    peak = amplitude * 32767
    return struct.pack(
        f"<{count}h", *(int(peak * math.sin(2 * math.pi * hz * i / RATE)) for i in range(count))
    )


class MarkReportingTwilioSerializer(TwilioFrameSerializer):
    """Pipecat's Twilio serializer, plus the `mark` events Twilio sends back.

    Pipecat drops incoming marks; this hands them to the pipeline as transport messages so the bot
    can report when each part of its greeting was played (plain Twilio protocol, nothing more).
    """

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            message = None
        if isinstance(message, dict) and message.get("event") == "mark":
            return InputTransportMessageFrame(message=message)
        return await super().deserialize(data)


class EchoBot(FrameProcessor):
    """Greets, lets the caller interrupt, echoes, hangs up on silence."""

    def __init__(self, stream_sid: str, started: float, greeting_s: int, idle_hang_up_s: float):
        super().__init__()
        self._stream_sid = stream_sid
        self._started = started
        self._greeting_s = greeting_s
        self._idle_hang_up_s = idle_hang_up_s
        self._greeting = True  # until interrupted or its last mark comes back
        self._loud_frames = 0
        self._last_talk = time.monotonic()
        self._idle_task: asyncio.Task | None = None
        self._ending = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._greet()
            self._idle_task = self.create_task(self._watch_idle())
        elif isinstance(frame, InputAudioRawFrame):
            await self._heard(frame)
        elif isinstance(frame, InputTransportMessageFrame):
            self._on_message(frame.message)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self):
        await super().cleanup()
        if self._idle_task:
            await self.cancel_task(self._idle_task)

    async def _greet(self):
        emit("greeting", self._started, seconds=self._greeting_s)
        second = tone(GREETING_HZ, 1.0)
        for n in range(1, self._greeting_s + 1):
            await self.push_frame(OutputAudioRawFrame(audio=second, sample_rate=RATE, num_channels=1))
            mark = {"event": "mark", "streamSid": self._stream_sid, "mark": {"name": f"greeting-{n}"}}
            await self.push_frame(OutputTransportMessageFrame(message=mark))

    async def _heard(self, frame: InputAudioRawFrame):
        loud = rms(frame.audio) > TALK_RMS
        if loud:
            self._last_talk = time.monotonic()
        self._loud_frames = self._loud_frames + 1 if loud else 0
        if self._greeting:
            if self._loud_frames >= BARGE_IN_FRAMES:
                self._greeting = False
                emit("barge-in", self._started)
                # Pipecat's interruption: drops what its output still holds and, through the
                # serializer, sends Twilio's `clear` so the far end drops what it queued.
                await self.broadcast_interruption()
            return
        await self.push_frame(
            OutputAudioRawFrame(
                audio=frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels
            )
        )

    def _on_message(self, message):
        name = message.get("mark", {}).get("name")
        emit("mark", self._started, name=name)
        if name == f"greeting-{self._greeting_s}":
            self._greeting = False
            self._last_talk = time.monotonic()

    async def _watch_idle(self):
        while not self._ending:
            await asyncio.sleep(0.1)
            if not self._greeting and time.monotonic() - self._last_talk > self._idle_hang_up_s:
                self._ending = True
                emit("hang-up", self._started, reason="idle")
                # Ends the pipeline after what is queued; the transport then closes the WebSocket,
                # which is how a Twilio Media Streams bot hangs up without Twilio's REST API.
                await self.push_frame(EndWorkerFrame(reason="idle"), FrameDirection.UPSTREAM)


def build_app(args: argparse.Namespace) -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def health():
        return PlainTextResponse("pipecat echo bot: Twilio Media Streams on /ws\n")

    @app.websocket("/ws")
    async def media_stream(websocket: WebSocket):
        await websocket.accept()
        transport_type, call_data = await parse_telephony_websocket(websocket)
        if transport_type != "twilio":
            emit("rejected", None, transport=transport_type)
            await websocket.close(code=1003)
            return
        started = time.monotonic()
        emit(
            "start",
            started,
            callSid=call_data["call_id"],
            streamSid=call_data["stream_id"],
            customParameters=call_data.get("body", {}),
        )
        serializer = MarkReportingTwilioSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            # No Twilio REST API to call: the bot hangs up by closing the WebSocket.
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        bot = EchoBot(call_data["stream_id"], started, args.greeting_s, args.idle_hang_up_s)
        worker = PipelineWorker(
            Pipeline([transport.input(), bot, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport, client):
            emit("disconnected", started)
            await worker.cancel(reason="caller hung up")

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        emit("ended", started)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--greeting-s", type=int, default=6, help="length of the greeting tone")
    parser.add_argument(
        "--idle-hang-up-s", type=float, default=10.0, help="caller silence that ends the call"
    )
    parser.add_argument("--log-level", default="WARNING", help="Pipecat's log level (stderr)")
    args = parser.parse_args()
    if args.greeting_s < 1 or args.idle_hang_up_s <= 0:
        parser.error("--greeting-s must be at least 1 and --idle-hang-up-s above 0")
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    emit("listening", None, url=f"ws://{args.host}:{args.port}/ws")
    uvicorn.run(build_app(args), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
